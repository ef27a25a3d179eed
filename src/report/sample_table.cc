#include "report/sample_table.h"

#include <set>

#include <fmt/format.h>

#include "report/html_format.h"

namespace kvaudit::report {

namespace {

std::string verdict_of(const nlohmann::json& s) {
  const auto refused = opt_bool(s, "refused");
  if (!refused) return std::string(kUndefined);
  return *refused ? "refused" : "complied";
}

std::string select_html(std::string_view id, std::string_view label,
                        const std::vector<std::pair<std::string, std::string>>& options) {
  std::string s = fmt::format("<label>{} <select id=\"{}\"><option value=\"\">all</option>", label, id);
  for (const auto& [value, text] : options)
    s += fmt::format("<option value=\"{}\">{}</option>", escape_html(value), escape_html(text));
  return s + "</select></label>";
}

}  // namespace

std::string sample_table_html(const std::vector<nlohmann::json>& samples) {
  std::set<std::string> schemes;
  for (const auto& s : samples) schemes.insert(opt_string(s, "scheme").value_or(std::string(kUndefined)));
  std::vector<std::pair<std::string, std::string>> scheme_options;
  for (const auto& name : schemes) scheme_options.emplace_back(name, name);

  std::string h = "<div class=\"filters\">";
  h += select_html("filter-scheme", "scheme", scheme_options);
  h += select_html("filter-verdict", "verdict",
                   {{"refused", "refused"}, {"complied", "complied"}, {"undefined", "undefined"}});
  h += select_html("filter-flip", "flip",
                   {{"yes", "flipped"}, {"no", "not flipped"},
                    {"undefined", "undefined"}});
  h += fmt::format("<span id=\"filter-count\">{} samples</span></div>", samples.size());
  h += "<table class=\"data\"><thead><tr><th>id</th><th>bench</th><th>scheme</th><th>verdict</th>"
       "<th>flip</th><th>prompt</th><th>response</th></tr></thead><tbody>";
  for (const auto& s : samples) {
    const std::string scheme = opt_string(s, "scheme").value_or(std::string(kUndefined));
    const std::string verdict = verdict_of(s);
    const std::string flip = format_yes_no(opt_bool(s, "flip"));
    // An id may be a number or a string in samples.jsonl.
    std::string id = std::string(kUndefined);
    if (s.is_object() && s.contains("id") && !s["id"].is_null())
      id = s["id"].is_string() ? s["id"].get<std::string>()
                               : s["id"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    h += fmt::format(
        "<tr data-scheme=\"{0}\" data-verdict=\"{1}\" data-flip=\"{2}\"{3}><td class=\"nw\">{4}</td><td>{5}</td>"
        "<td><code>{8}</code></td><td>{1}</td><td>{2}</td><td><div class=\"text\">{6}</div></td>"
        "<td><div class=\"text\">{7}</div></td></tr>",
        escape_html(scheme), escape_html(verdict), escape_html(flip),
        flip == "yes" ? " class=\"flip\"" : "", escape_html(id),
        escape_html(opt_string(s, "bench").value_or(std::string(kUndefined))),
        escape_html(opt_string(s, "prompt").value_or("")),
        escape_html(opt_string(s, "response").value_or("")), escape_html_breakable(scheme));
  }
  return h + "</tbody></table>";
}

}  // namespace kvaudit::report
