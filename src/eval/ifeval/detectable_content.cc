// detectable_content:* (reference: PlaceholderChecker, PostscriptChecker).
#include <memory>

#include "eval/ifeval/instruction.h"
#include "eval/ifeval/text_rules.h"
#include "text/regex.h"

namespace kvaudit::eval::ifeval {

Check make_number_placeholders(const Kwargs& kw) {
  const int64_t n = kw.integer("num_placeholders");
  return [=](std::string_view r) {
    static const text::Regex placeholder(R"(\[.*?\])", "ifeval placeholder");
    return static_cast<int64_t>(placeholder.find_all(r).size()) >= n;
  };
}

// The reference matches the lowercased response; its two known markers get patterns that allow
// a space after each dot, any other marker is used as a regex as given.
Check make_postscript(const Kwargs& kw) {
  const std::string marker = kw.str("postscript_marker");
  std::string pattern;
  if (marker == "P.P.S")
    pattern = R"(\s*p\.\s?p\.\s?s.*$)";
  else if (marker == "P.S.")
    pattern = R"(\s*p\.\s?s\..*$)";
  else
    pattern = R"(\s*)" + py_lower(marker) + ".*$";
  auto re = std::make_shared<text::Regex>(pattern, "ifeval postscript marker", text::Regex::kMultiline);
  return [re](std::string_view r) { return re->search(py_lower(r)); };
}

}  // namespace kvaudit::eval::ifeval
