// PCRE2 (UTF + UCP, JIT when available) wrapper for the pre-tokenizer split patterns: HF compiles
// them with Oniguruma; \p{L}, \p{N}, \s and look-ahead need a Unicode engine (SPEC.md §2).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvaudit::text {

class Regex {
 public:
  // PCRE2 options beyond UTF + UCP (eval/ifeval reproduces Python re's IGNORECASE / MULTILINE).
  enum Flags : unsigned { kNone = 0, kCaseless = 1, kMultiline = 2 };

  // Throws UsageError naming `what` if the pattern does not compile.
  Regex(const std::string& pattern, const std::string& what, unsigned flags = kNone);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-overlapping leftmost matches as (begin, end) byte offsets; `s` must be valid UTF-8.
  // An empty match advances by one character, as Oniguruma's find_iter does.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;

  // Whether the pattern matches anywhere in `s` (valid UTF-8).
  bool search(std::string_view s) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvaudit::text
