#include "core/json_keys.h"

#include <set>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit {

namespace {

// SAX events only: the document is not built, and nothing but the open objects' key sets is kept.
class DuplicateKeyFinder : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::optional<std::string> found;

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override {
    frames_.push_back({true, {}, "", 0});
    return true;
  }
  bool key(string_t& k) override {
    Frame& f = frames_.back();
    if (!f.keys.insert(k).second) {
      const std::string where = path();
      found = where.empty() ? k : where + "." + k;
      return false;  // stop: one is enough to refuse the file
    }
    f.current = k;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override {
    frames_.push_back({false, {}, "", 0});
    return true;
  }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  struct Frame {
    bool object;
    std::set<std::string> keys;
    std::string current;  // the key whose value is being read (objects)
    size_t index;         // the entry being read (arrays)
  };
  std::vector<Frame> frames_;

  // The object now being read, e.g. "layers[2]": every open container but the innermost.
  std::string path() const {
    std::string p;
    for (size_t i = 0; i + 1 < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.object) p += (p.empty() ? "" : ".") + f.current;
      else p += "[" + std::to_string(f.index) + "]";
    }
    return p;
  }
  // A value ended: an array moves on to its next entry.
  bool value() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
    return true;
  }
  bool close() {
    frames_.pop_back();
    return value();
  }
};

}  // namespace

std::optional<std::string> first_duplicate_key(std::string_view text) {
  DuplicateKeyFinder finder;
  nlohmann::json::sax_parse(text.begin(), text.end(), &finder, nlohmann::json::input_format_t::json, false);
  return finder.found;
}

}  // namespace kvaudit
