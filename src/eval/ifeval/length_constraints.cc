// length_constraints:* (reference: ParagraphFirstWordCheck, ParagraphChecker, NumberOfSentences,
// NumberOfWords).
#include <algorithm>
#include <memory>

#include "eval/ifeval/instruction.h"
#include "eval/ifeval/text_rules.h"
#include "text/regex.h"
#include "text/utf8.h"

namespace kvaudit::eval::ifeval {
namespace {

// re.split(pattern, s) for a pattern that never matches empty.
std::vector<std::string_view> split(const text::Regex& re, std::string_view s) {
  std::vector<std::string_view> parts;
  size_t b = 0;
  for (auto [mb, me] : re.find_all(s)) {
    parts.push_back(s.substr(b, mb - b));
    b = me;
  }
  parts.push_back(s.substr(b));
  return parts;
}

}  // namespace

// Paragraphs split at "\n\n": blank ones are not counted, the count must be exact, and the nth
// paragraph's first token (leading ' then " removed) up to the first of . , ? ! ' " , lowercased,
// must be the word.
Check make_nth_paragraph_first_word(const Kwargs& kw) {
  const int64_t n_paragraphs = kw.integer("num_paragraphs");
  const int64_t nth = kw.integer("nth_paragraph");
  const std::string word = py_lower(kw.str("first_word"));
  return [=](std::string_view r) {
    static const text::Regex blank_line(R"(\n\n)", "ifeval paragraph");
    const auto paragraphs = split(blank_line, r);
    int64_t count = static_cast<int64_t>(paragraphs.size());
    for (auto p : paragraphs) count -= py_strip(p).empty();
    if (nth < 1 || nth > count) return false;
    const std::string_view paragraph = py_strip(paragraphs[static_cast<size_t>(nth - 1)]);
    if (paragraph.empty()) return false;
    std::string_view token = py_lstrip_chars(py_lstrip_chars(py_first_token(paragraph), "'"), "\"");
    std::string first;
    for (size_t i = 0; i < token.size();) {
      const size_t len = std::max<size_t>(1, text::utf8_valid_len(token, i));
      const std::string_view ch = token.substr(i, len);
      if (ch.size() == 1 && std::string_view(".,?!'\"").find(ch[0]) != std::string_view::npos) break;
      first += py_lower(ch);  // per character, as the reference lowers letter by letter
      i += len;
    }
    return count == n_paragraphs && first == word;
  };
}

// Paragraphs split at "***" (with one optional space or newline either side); a blank paragraph
// is allowed only first or last (and then not counted); the count must be exact.
Check make_number_paragraphs(const Kwargs& kw) {
  const int64_t n = kw.integer("num_paragraphs");
  return [=](std::string_view r) {
    static const text::Regex divider(R"(\s?\*\*\*\s?)", "ifeval paragraph divider");
    const auto paragraphs = split(divider, r);
    int64_t count = static_cast<int64_t>(paragraphs.size());
    for (size_t i = 0; i < paragraphs.size(); ++i) {
      if (!py_strip(paragraphs[i]).empty()) continue;
      if (i != 0 && i + 1 != paragraphs.size()) return false;
      --count;
    }
    return count == n;
  };
}

Check make_number_sentences(const Kwargs& kw) {
  const int64_t n = kw.integer("num_sentences");
  const bool less = kw.less_than("relation");
  return [=](std::string_view r) { return compare(static_cast<int64_t>(count_sentences(r)), less, n); };
}

Check make_number_words(const Kwargs& kw) {
  const int64_t n = kw.integer("num_words");
  const bool less = kw.less_than("relation");
  return [=](std::string_view r) { return compare(static_cast<int64_t>(count_words(r)), less, n); };
}

}  // namespace kvaudit::eval::ifeval
