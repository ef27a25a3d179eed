#include "text/decoder.h"

#include "core/error.h"
#include "text/string_pattern.h"
#include "text/utf8.h"

namespace kvaudit::text {
namespace {

constexpr const char* kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Bytes -> text, every invalid byte becoming U+FFFD (Rust's String::from_utf8_lossy replaces each
// maximal invalid prefix; for the byte sequences a decoder meets this is the same per byte).
std::string lossy(const std::string& bytes) { return utf8_sanitize(bytes); }

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void apply(std::vector<std::string>& t) const override {
    for (const auto& s : steps_) s->apply(t);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

// Byte-level code points back to bytes; a token with a character outside the alphabet keeps its
// own UTF-8 bytes. The whole output is one string.
class ByteLevelDecoder : public Decoder {
 public:
  void apply(std::vector<std::string>& t) const override {
    std::string bytes;
    for (const std::string& tok : t) {
      std::string mapped;
      bool ok = true;
      for (size_t i = 0; i < tok.size();) {
        size_t n = utf8_valid_len(tok, i);
        const int b = n ? byte_level_byte(utf8_decode(tok, i, n)) : -1;
        if (b < 0) {
          ok = false;
          break;
        }
        mapped += static_cast<char>(b);
        i += n;
      }
      bytes += ok ? mapped : tok;
    }
    t.assign(1, lossy(bytes));
  }
};

// <0xXX> tokens become bytes; a run of them that is not valid UTF-8 becomes one U+FFFD per byte.
class ByteFallbackDecoder : public Decoder {
 public:
  void apply(std::vector<std::string>& t) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t n_pending = 0;
    auto flush = [&] {
      if (n_pending == 0) return;
      if (utf8_sanitize(pending) == pending) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < n_pending; ++i) out.push_back(kReplacementChar);
      }
      pending.clear();
      n_pending = 0;
    };
    for (std::string& tok : t) {
      int byte = parse_byte(tok);
      if (byte >= 0) {
        pending += static_cast<char>(byte);
        ++n_pending;
      } else {
        flush();
        out.push_back(std::move(tok));
      }
    }
    flush();
    t = std::move(out);
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }
  static int parse_byte(const std::string& s) {
    if (s.size() != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    const int h = hex(s[3]), l = hex(s[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder : public Decoder {
 public:
  void apply(std::vector<std::string>& t) const override {
    std::string all;
    for (const auto& s : t) all += s;
    t.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing occurrences of `content` from every token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, int start, int stop) : c_(std::move(content)), start_(start), stop_(stop) {}
  void apply(std::vector<std::string>& t) const override {
    if (c_.empty()) return;
    for (std::string& s : t) {
      size_t b = 0, e = s.size();
      for (int k = 0; k < start_ && e - b >= c_.size() && s.compare(b, c_.size(), c_) == 0; ++k) b += c_.size();
      for (int k = 0; k < stop_ && e - b >= c_.size() && s.compare(e - c_.size(), c_.size(), c_) == 0; ++k)
        e -= c_.size();
      s = s.substr(b, e - b);
    }
  }

 private:
  std::string c_;
  int start_, stop_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(StringPattern p, std::string content) : p_(std::move(p)), content_(std::move(content)) {}
  void apply(std::vector<std::string>& t) const override {
    for (std::string& s : t) s = p_.replace_all(s, content_);
  }

 private:
  StringPattern p_;
  std::string content_;
};

// The replacement character becomes a space, except in the first token (when a prefix space was
// prepended at encode time), where it is dropped, as HF's Metaspace decoder does.
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string rep, bool prepends) : rep_(std::move(rep)), prepends_(prepends) {}
  void apply(std::vector<std::string>& t) const override {
    for (size_t i = 0; i < t.size(); ++i) {
      std::string out;
      const std::string& s = t[i];
      for (size_t p = 0; p < s.size();) {
        if (s.compare(p, rep_.size(), rep_) == 0) {
          if (!(i == 0 && prepends_)) out += ' ';
          p += rep_.size();
        } else {
          out += s[p++];
        }
      }
      t[i] = std::move(out);
    }
  }

 private:
  std::string rep_;
  bool prepends_;
};

}  // namespace

std::unique_ptr<Decoder> build_decoder(const nlohmann::json& j, const std::string& what) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const auto& s : j.at("decoders"))
      if (auto d = build_decoder(s, what)) steps.push_back(std::move(d));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(j.at("content").get<std::string>(), j.value("start", 0), j.value("stop", 0));
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(StringPattern(j.at("pattern"), what), j.at("content").get<std::string>());
  if (type == "Metaspace") {
    bool prepends = j.value("add_prefix_space", true);
    if (j.contains("prepend_scheme")) prepends = j.at("prepend_scheme").get<std::string>() != "never";
    return std::make_unique<MetaspaceDecoder>(j.value("replacement", std::string("\xE2\x96\x81")), prepends);
  }
  usage_error("{}: unsupported decoder type '{}'", what, type);
}

}  // namespace kvaudit::text
