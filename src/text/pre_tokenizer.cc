#include "text/pre_tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "text/regex.h"
#include "text/string_pattern.h"
#include "text/utf8.h"

namespace kvaudit::text {

std::vector<std::pair<size_t, size_t>> split_by_matches(size_t len,
                                                        const std::vector<std::pair<size_t, size_t>>& matches,
                                                        SplitBehavior behavior, bool invert) {
  struct Seg {
    size_t b, e;
    bool match;
  };
  std::vector<Seg> segs;  // covers [0, len) in order
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (prev != b) segs.push_back({prev, b, invert});
    segs.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != len) segs.push_back({prev, len, invert});

  std::vector<std::pair<size_t, size_t>> out;
  bool prev_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Seg& s : segs) out.emplace_back(s.b, s.e);
      break;
    case SplitBehavior::kRemoved:
      for (const Seg& s : segs)
        if (!s.match) out.emplace_back(s.b, s.e);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Seg& s : segs) {
        if (s.match && !prev_match && !out.empty()) out.back().second = s.e;
        else out.emplace_back(s.b, s.e);
        prev_match = s.match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->match && !prev_match && !out.empty()) out.back().first = it->b;
        else out.emplace_back(it->b, it->e);
        prev_match = it->match;
      }
      std::reverse(out.begin(), out.end());
      break;
    case SplitBehavior::kContiguous:
      for (size_t i = 0; i < segs.size(); ++i) {
        if (i > 0 && segs[i].match == prev_match) out.back().second = segs[i].e;
        else out.emplace_back(segs[i].b, segs[i].e);
        prev_match = segs[i].match;
      }
      break;
  }
  std::erase_if(out, [](auto p) { return p.first == p.second; });
  return out;
}

namespace {

// Replaces each piece by its sub-pieces at the given [begin, end) ranges.
template <typename F>
void split_pieces(std::vector<Piece>& pieces, F ranges_of) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  for (Piece& p : pieces) {
    for (auto [b, e] : ranges_of(p)) out.push_back({p.text.substr(b, e - b), p.at_start && b == 0});
  }
  pieces = std::move(out);
}

SplitBehavior parse_behavior(const std::string& s, const std::string& what) {
  if (s == "Removed") return SplitBehavior::kRemoved;
  if (s == "Isolated") return SplitBehavior::kIsolated;
  if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return SplitBehavior::kContiguous;
  usage_error("{}: unknown split behavior '{}'", what, s);
}

class SequencePre : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void apply(std::vector<Piece>& pieces) const override {
    for (const auto& s : steps_) s->apply(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class SplitPre : public PreTokenizer {
 public:
  SplitPre(StringPattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void apply(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, [&](const Piece& p) {
      return split_by_matches(p.text.size(), pattern_.find_all(p.text), behavior_, invert_);
    });
  }

 private:
  StringPattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2's split pattern, used by ByteLevel when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPre : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool use_regex, const std::string& what)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, what);
  }
  void apply(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_)
      for (Piece& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, " ");
    if (regex_)
      split_pieces(pieces, [&](const Piece& p) {
        return split_by_matches(p.text.size(), regex_->find_all(p.text), SplitBehavior::kIsolated, false);
      });
    const auto& chars = byte_level_chars();
    for (Piece& p : pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (unsigned char c : p.text) mapped += chars[c];
      p.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePre : public PreTokenizer {
 public:
  MetaspacePre(std::string replacement, PrependScheme scheme, bool split)
      : rep_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void apply(std::vector<Piece>& pieces) const override {
    for (Piece& p : pieces) {
      std::string t;
      t.reserve(p.text.size() + 3);
      for (char c : p.text) {
        if (c == ' ') t += rep_;
        else t += c;
      }
      const bool starts = t.compare(0, rep_.size(), rep_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_start)))
        t.insert(0, rep_);
      p.text = std::move(t);
    }
    if (!split_) return;
    split_pieces(pieces, [&](const Piece& p) {
      std::vector<std::pair<size_t, size_t>> m;
      for (size_t i = p.text.find(rep_); i != std::string::npos; i = p.text.find(rep_, i + rep_.size()))
        m.emplace_back(i, i + rep_.size());
      return split_by_matches(p.text.size(), m, SplitBehavior::kMergedWithNext, false);
    });
  }

 private:
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
};

}  // namespace

std::unique_ptr<PreTokenizer> build_pre_tokenizer(const nlohmann::json& j, const std::string& what) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& s : j.at("pretokenizers"))
      if (auto p = build_pre_tokenizer(s, what)) steps.push_back(std::move(p));
    return std::make_unique<SequencePre>(std::move(steps));
  }
  if (type == "Split")
    return std::make_unique<SplitPre>(StringPattern(j.at("pattern"), what),
                                      parse_behavior(j.at("behavior").get<std::string>(), what),
                                      j.value("invert", false));
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPre>(j.value("add_prefix_space", true), j.value("use_regex", true), what);
  if (type == "Metaspace") {
    PrependScheme scheme = j.value("add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
    if (j.contains("prepend_scheme")) {
      const std::string s = j.at("prepend_scheme").get<std::string>();
      if (s == "always") scheme = PrependScheme::kAlways;
      else if (s == "first") scheme = PrependScheme::kFirst;
      else if (s == "never") scheme = PrependScheme::kNever;
      else usage_error("{}: unknown Metaspace prepend_scheme '{}'", what, s);
    }
    return std::make_unique<MetaspacePre>(j.value("replacement", std::string("\xE2\x96\x81")), scheme,
                                          j.value("split", true));
  }
  if (type == "Digits") {
    nlohmann::json pat = {{"Regex", "\\p{N}"}};
    return std::make_unique<SplitPre>(StringPattern(pat, what),
                                      j.value("individual_digits", false) ? SplitBehavior::kIsolated
                                                                          : SplitBehavior::kContiguous,
                                      false);
  }
  if (type == "Whitespace") {
    nlohmann::json pat = {{"Regex", "\\w+|[^\\w\\s]+"}};
    return std::make_unique<SplitPre>(StringPattern(pat, what), SplitBehavior::kRemoved, true);
  }
  if (type == "WhitespaceSplit") {
    nlohmann::json pat = {{"Regex", "\\s+"}};
    return std::make_unique<SplitPre>(StringPattern(pat, what), SplitBehavior::kRemoved, false);
  }
  usage_error("{}: unsupported pre_tokenizer type '{}'", what, type);
}

}  // namespace kvaudit::text
