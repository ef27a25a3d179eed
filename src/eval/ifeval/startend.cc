// startend:* (reference: EndChecker, QuotationChecker).
#include "eval/ifeval/instruction.h"
#include "eval/ifeval/text_rules.h"

namespace kvaudit::eval::ifeval {

Check make_end_checker(const Kwargs& kw) {
  const std::string end = py_lower(py_strip(kw.str("end_phrase")));
  return [=](std::string_view r) { return py_lower(py_strip_chars(py_strip(r), "\"")).ends_with(end); };
}

// Stripped, at least two characters, '"' first and last.
Check make_quotation(const Kwargs&) {
  return [](std::string_view r) {
    r = py_strip(r);
    return code_points(r) > 1 && r.front() == '"' && r.back() == '"';
  };
}

}  // namespace kvaudit::eval::ifeval
