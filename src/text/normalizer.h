// tokenizer.json "normalizer" (SPEC.md §2): applied to each piece of text between added tokens,
// before pre-tokenization. Supported, as HF `tokenizers` defines them: NFC, NFD, NFKC, NFKD
// (ICU Normalizer2, restricted to HF's Unicode 9.0 repertoire), Lowercase (ICU full lowercase
// mapping, one character at a time as Rust's char::to_lowercase), Strip (Unicode White_Space),
// Replace (String or Regex pattern, PCRE2), Prepend, Sequence.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace kvaudit::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // s is valid UTF-8 (the tokenizer sanitizes its input first).
  virtual void apply(std::string& s) const = 0;
};

// null JSON -> nullptr. Unsupported types throw UsageError naming `what` and the type.
std::unique_ptr<Normalizer> build_normalizer(const nlohmann::json& j, const std::string& what);

}  // namespace kvaudit::text
