// change_case:* (reference: CapitalWordFrequencyChecker, CapitalLettersEnglishChecker,
// LowercaseLettersEnglishChecker).
#include "eval/ifeval/instruction.h"
#include "eval/ifeval/text_rules.h"

namespace kvaudit::eval::ifeval {
namespace {
// langdetect raising (no letters) counts as followed in the reference.
bool is_english(std::string_view r) {
  const std::string lang = detect_language(r);
  return lang.empty() || lang == "en";
}
}  // namespace

Check make_capital_word_frequency(const Kwargs& kw) {
  const int64_t n = kw.integer("capital_frequency");
  const bool less = kw.less_than("capital_relation");
  return [=](std::string_view r) { return compare(static_cast<int64_t>(count_uppercase_words(r)), less, n); };
}

// The reference evaluates `isupper() and detect() == "en"` inside one try: a text with no letters
// fails isupper before langdetect could raise, so only the language part can turn into "followed".
Check make_english_capital(const Kwargs&) {
  return [](std::string_view r) { return py_isupper(r) && is_english(r); };
}

Check make_english_lowercase(const Kwargs&) {
  return [](std::string_view r) { return py_islower(r) && is_english(r); };
}

}  // namespace kvaudit::eval::ifeval
