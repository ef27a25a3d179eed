// combination:* (reference: RepeatPromptThenAnswer, TwoResponsesChecker).
#include "eval/ifeval/instruction.h"
#include "eval/ifeval/text_rules.h"

namespace kvaudit::eval::ifeval {

Check make_repeat_prompt(const Kwargs& kw) {
  const std::string prefix = py_lower(py_strip(kw.str("prompt_to_repeat")));
  return [=](std::string_view r) { return py_lower(py_strip(r)).starts_with(prefix); };
}

// Exactly two non-blank parts around "******" (blank parts allowed only at either end), and the
// two different.
Check make_two_responses(const Kwargs&) {
  return [](std::string_view r) {
    static constexpr std::string_view kSep = "******";
    std::vector<std::string_view> parts;
    for (size_t b = 0;;) {
      const size_t e = r.find(kSep, b);
      parts.push_back(r.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
      if (e == std::string_view::npos) break;
      b = e + kSep.size();
    }
    std::vector<std::string_view> valid;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!py_strip(parts[i]).empty())
        valid.push_back(parts[i]);
      else if (i != 0 && i + 1 != parts.size())
        return false;
    }
    return valid.size() == 2 && py_strip(valid[0]) != py_strip(valid[1]);
  };
}

}  // namespace kvaudit::eval::ifeval
