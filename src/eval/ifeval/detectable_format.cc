// detectable_format:* (reference: ConstrainedResponseChecker, JsonFormat, SectionChecker,
// BulletListChecker, HighlightSectionChecker, TitleChecker).
#include <array>
#include <memory>

#include <nlohmann/json.hpp>

#include "eval/ifeval/instruction.h"
#include "eval/ifeval/text_rules.h"
#include "text/regex.h"

namespace kvaudit::eval::ifeval {
namespace {

std::string_view remove_prefix(std::string_view s, std::string_view p) { return s.starts_with(p) ? s.substr(p.size()) : s; }
std::string_view remove_suffix(std::string_view s, std::string_view p) {
  return s.ends_with(p) ? s.substr(0, s.size() - p.size()) : s;
}

// Python's json.loads also takes the literals NaN, Infinity and -Infinity as numbers; nlohmann
// does not, so outside strings they become 0 first.
bool python_json_accepts(std::string_view s) {
  std::string t;
  t.reserve(s.size());
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      t += c;
      if (c == '\\' && i + 1 < s.size()) t += s[++i];
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    bool replaced = false;
    for (std::string_view lit : {"-Infinity", "Infinity", "NaN"})
      if (s.substr(i).starts_with(lit)) {
        t += '0';
        i += lit.size() - 1;
        replaced = true;
        break;
      }
    if (!replaced) t += c;
  }
  return nlohmann::json::accept(t);
}

}  // namespace

Check make_constrained_response(const Kwargs&) {
  return [](std::string_view r) {
    static constexpr std::array<std::string_view, 3> kOptions = {"My answer is yes.", "My answer is no.",
                                                                 "My answer is maybe."};
    r = py_strip(r);
    for (auto o : kOptions)
      if (r.find(o) != std::string_view::npos) return true;
    return false;
  };
}

// The response, stripped of one markdown fence (```json, ```Json, ```JSON or ```, each prefix
// removed in that order, as the reference chains them), parses as JSON as Python's json.loads
// reads it.
Check make_json_format(const Kwargs&) {
  return [](std::string_view r) {
    r = py_strip(r);
    for (auto p : {"```json", "```Json", "```JSON", "```"}) r = remove_prefix(r, p);
    r = py_strip(remove_suffix(r, "```"));
    return python_json_accepts(r);
  };
}

// Pieces of re.split(r"\s?SPLITTER\s?\d+\s?") minus one.
Check make_multiple_sections(const Kwargs& kw) {
  const int64_t n = kw.integer("num_sections");
  const std::string splitter(py_strip(kw.str("section_spliter")));
  auto re = std::make_shared<text::Regex>(R"(\s?)" + splitter + R"(\s?\d+\s?)", "ifeval section splitter");
  return [=](std::string_view r) { return static_cast<int64_t>(re->find_all(r).size()) >= n; };
}

// Lines starting "* " (not "**") or "-", exactly the number asked for.
Check make_number_bullet_lists(const Kwargs& kw) {
  const int64_t n = kw.integer("num_bullets");
  return [=](std::string_view r) {
    static const text::Regex star(R"(^\s*\*[^\*].*$)", "ifeval bullet", text::Regex::kMultiline);
    static const text::Regex dash(R"(^\s*-.*$)", "ifeval bullet", text::Regex::kMultiline);
    return static_cast<int64_t>(star.find_all(r).size() + dash.find_all(r).size()) == n;
  };
}

// *x* spans and **x** spans with some non-space text, each pattern scanned on its own; a **bold**
// span counts once (the single-star scan only sees its empty "**" ends).
Check make_number_highlighted_sections(const Kwargs& kw) {
  const int64_t n = kw.integer("num_highlights");
  return [=](std::string_view r) {
    static const text::Regex single(R"(\*[^\n\*]*\*)", "ifeval highlight");
    static const text::Regex dbl(R"(\*\*[^\n\*]*\*\*)", "ifeval highlight");
    int64_t count = 0;
    for (auto [b, e] : single.find_all(r)) count += !py_strip(py_strip_chars(r.substr(b, e - b), "*")).empty();
    for (auto [b, e] : dbl.find_all(r)) count += !py_strip(r.substr(b + 2, e - b - 4)).empty();
    return count >= n;
  };
}

Check make_title(const Kwargs&) {
  return [](std::string_view r) {
    static const text::Regex title(R"(<<[^\n]+>>)", "ifeval title");
    for (auto [b, e] : title.find_all(r))
      if (!py_strip(py_rstrip_chars(py_lstrip_chars(r.substr(b, e - b), "<"), ">")).empty()) return true;
    return false;
  };
}

}  // namespace kvaudit::eval::ifeval
