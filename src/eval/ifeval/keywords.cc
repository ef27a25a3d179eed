// keywords:* (reference: KeywordChecker, ForbiddenWords, KeywordFrequencyChecker,
// LetterFrequencyChecker). Keywords are regex patterns in the reference (re.search with
// IGNORECASE), and so here.
#include <memory>

#include "core/error.h"
#include "eval/ifeval/instruction.h"
#include "eval/ifeval/text_rules.h"
#include "text/regex.h"

namespace kvaudit::eval::ifeval {
namespace {
using Regexes = std::vector<std::shared_ptr<text::Regex>>;
}  // namespace

Check make_keyword_existence(const Kwargs& kw) {
  Regexes res;
  for (const auto& k : kw.strings("keywords"))
    res.push_back(std::make_shared<text::Regex>(k, "ifeval keyword", text::Regex::kCaseless));
  return [res](std::string_view r) {
    for (const auto& re : res)
      if (!re->search(r)) return false;
    return true;
  };
}

Check make_forbidden_words(const Kwargs& kw) {
  Regexes res;
  for (const auto& w : kw.strings("forbidden_words"))
    res.push_back(std::make_shared<text::Regex>(R"(\b)" + w + R"(\b)", "ifeval forbidden word", text::Regex::kCaseless));
  return [res](std::string_view r) {
    for (const auto& re : res)
      if (re->search(r)) return false;
    return true;
  };
}

Check make_keyword_frequency(const Kwargs& kw) {
  auto re = std::make_shared<text::Regex>(kw.str("keyword"), "ifeval keyword", text::Regex::kCaseless);
  const int64_t n = kw.integer("frequency");
  const bool less = kw.less_than("relation");
  return [=](std::string_view r) { return compare(static_cast<int64_t>(re->find_all(r).size()), less, n); };
}

// Occurrences of one character in the lowercased response (so 'A' and 'a' count, and so does the
// Kelvin sign, which lowercases to 'k'). The reference replaces anything but one ASCII letter with
// a random letter (key 1122 asks for '#'); here the character asked for is what counts
// (docs/IFEVAL.md).
Check make_letter_frequency(const Kwargs& kw) {
  const std::string letter = py_lower(kw.str("letter"));
  if (code_points(letter) != 1) usage_error("IFEval letter_frequency: letter '{}' is not one character", letter);
  const int64_t n = kw.integer("let_frequency");
  const bool less = kw.less_than("let_relation");
  return [=](std::string_view r) {
    const std::string lower = py_lower(r);
    int64_t count = 0;
    for (size_t i = lower.find(letter); i != std::string::npos; i = lower.find(letter, i + letter.size())) ++count;
    return compare(count, less, n);
  };
}

}  // namespace kvaudit::eval::ifeval
