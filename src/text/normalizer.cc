#include "text/normalizer.h"

#include <unicode/normalizer2.h>
#include <unicode/uniset.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "text/regex.h"
#include "text/string_pattern.h"
#include "text/utf8.h"

namespace kvaudit::text {
namespace {

bool is_ascii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void apply(std::string& s) const override {
    for (const auto& st : steps_) st->apply(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// Unicode normalization forms (UAX #15) from ICU; HF applies them to the whole piece.
class UnicodeFormNormalizer : public Normalizer {
 public:
  UnicodeFormNormalizer(const icu::Normalizer2* form, std::string name) : form_(form), name_(std::move(name)) {}
  void apply(std::string& s) const override {
    if (is_ascii(s)) return;  // ASCII is invariant under all four forms
    UErrorCode status = U_ZERO_ERROR;
    const icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
    const icu::UnicodeString out = form_->normalize(in, status);
    if (U_FAILURE(status)) runtime_error("ICU {} normalization failed: {}", name_, u_errorName(status));
    s.clear();
    out.toUTF8String(s);
  }

 private:
  const icu::Normalizer2* form_;
  std::string name_;
};

// HF `tokenizers` normalizes with the unicode-normalization-alignments crate, whose tables are
// Unicode 9.0: characters assigned later (e.g. U+32FF, U+0D3B, U+1DFA) have no decomposition and
// combining class 0 there. ICU's FilteredNormalizer2 over [:age=9.0:] (every code point assigned
// by 9.0) is exactly normalization with 9.0 data, the way ICU builds its own Unicode 3.2 instance.
constexpr const char* kHfUnicodeAge = "[:age=9.0:]";

const icu::Normalizer2* icu_form(const std::string& type) {
  UErrorCode status = U_ZERO_ERROR;
  static const icu::UnicodeSet* hf_chars = [] {
    UErrorCode st = U_ZERO_ERROR;
    auto* set = new icu::UnicodeSet(icu::UnicodeString(kHfUnicodeAge), st);
    if (U_FAILURE(st)) runtime_error("ICU UnicodeSet {} failed: {}", kHfUnicodeAge, u_errorName(st));
    set->freeze();
    return set;
  }();
  const icu::Normalizer2* base = nullptr;
  if (type == "NFC") base = icu::Normalizer2::getNFCInstance(status);
  else if (type == "NFD") base = icu::Normalizer2::getNFDInstance(status);
  else if (type == "NFKC") base = icu::Normalizer2::getNFKCInstance(status);
  else if (type == "NFKD") base = icu::Normalizer2::getNFKDInstance(status);
  if (U_FAILURE(status) || !base) runtime_error("ICU {} normalizer unavailable: {}", type, u_errorName(status));
  // One filtered instance per form for the process (they are immutable and thread-safe).
  static std::mutex mu;
  static std::map<const icu::Normalizer2*, std::unique_ptr<icu::FilteredNormalizer2>> filtered;
  std::lock_guard lock(mu);
  auto& f = filtered[base];
  if (!f) f = std::make_unique<icu::FilteredNormalizer2>(*base, *hf_chars);
  return f.get();
}

// HF's Lowercase maps each character on its own with Rust's char::to_lowercase (full mapping,
// e.g. U+0130 -> "i\u0307", but no context: a final capital sigma becomes σ, not ς). ICU's
// u_strToLower with the root locale applied to one code point at a time gives the same.
class LowercaseNormalizer : public Normalizer {
 public:
  void apply(std::string& s) const override {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {  // ASCII: the same mapping, without the UTF-16 round trip
        out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
        ++i;
        continue;
      }
      const size_t n = utf8_char_len(s, i);
      const char32_t cp = utf8_decode(s, i, n);
      i += n;
      UChar src[2];
      int32_t src_len = 0;
      UBool err = false;
      U16_APPEND(src, src_len, 2, static_cast<UChar32>(cp), err);
      UChar dst[8];  // the longest full lowercase mapping is 3 UTF-16 units
      UErrorCode status = U_ZERO_ERROR;
      const int32_t dst_len = u_strToLower(dst, 8, src, src_len, "", &status);
      if (U_FAILURE(status) || err) runtime_error("ICU lowercase of U+{:04X} failed: {}", static_cast<uint32_t>(cp), u_errorName(status));
      for (int32_t k = 0; k < dst_len;) {
        UChar32 lc;
        U16_NEXT(dst, k, dst_len, lc);
        utf8_append(out, static_cast<char32_t>(lc));
      }
    }
    s = std::move(out);
  }
};

// Whitespace is Rust's char::is_whitespace, i.e. the Unicode White_Space property.
class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void apply(std::string& s) const override {
    std::vector<std::pair<size_t, bool>> chars;  // (byte offset, is White_Space) per character
    for (size_t i = 0; i < s.size(); i += utf8_char_len(s, i))
      chars.emplace_back(i, u_isUWhiteSpace(static_cast<UChar32>(utf8_decode(s, i, utf8_char_len(s, i)))));
    size_t b = 0, e = chars.size();
    if (left_)
      while (b < e && chars[b].second) ++b;
    if (right_)
      while (e > b && chars[e - 1].second) --e;
    const size_t begin = b < chars.size() ? chars[b].first : s.size();
    const size_t end = e < chars.size() ? chars[e].first : s.size();
    s = s.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

// HF prepends only to non-empty text.
class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string p) : p_(std::move(p)) {}
  void apply(std::string& s) const override {
    if (!s.empty()) s.insert(0, p_);
  }

 private:
  std::string p_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(StringPattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void apply(std::string& s) const override { s = pattern_.replace_all(s, content_); }

 private:
  StringPattern pattern_;
  std::string content_;
};

}  // namespace

std::unique_ptr<Normalizer> build_normalizer(const nlohmann::json& j, const std::string& what) {
  if (j.is_null()) return nullptr;
  if (!j.is_object()) usage_error("{}: normalizer must be an object or null, got {}", what, j.dump());
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& s : j.at("normalizers"))
      if (auto n = build_normalizer(s, what)) steps.push_back(std::move(n));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD")
    return std::make_unique<UnicodeFormNormalizer>(icu_form(type), type);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip") return std::make_unique<StripNormalizer>(j.value("strip_left", true), j.value("strip_right", true));
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(j.at("prepend").get<std::string>());
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(StringPattern(j.at("pattern"), what),
                                               j.at("content").get<std::string>());
  usage_error("{}: unsupported normalizer type '{}' (supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, Replace, "
              "Prepend, Sequence)",
              what, type);
}

}  // namespace kvaudit::text
