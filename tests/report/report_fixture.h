// Loads tests/fixtures/report/ (written by tools/report_fixture.py): a synthetic 30-layer audit.
#pragma once
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::report::testing {

inline nlohmann::json load_report_fixture() {
  std::ifstream f(std::string(KVAUDIT_FIXTURES) + "/report/report.json");
  return nlohmann::json::parse(f);
}

inline std::vector<nlohmann::json> load_samples_fixture() {
  std::ifstream f(std::string(KVAUDIT_FIXTURES) + "/report/samples.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Number of non-overlapping occurrences of needle in s.
inline size_t count_of(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + needle.size())) ++n;
  return n;
}

// The markup of the element with id="id" up to the next element of the same tag closing, for
// checks scoped to one figure (the figures do not nest).
inline std::string element_by_id(const std::string& html, const std::string& id,
                                 const std::string& tag) {
  const size_t start = html.find("id=\"" + id + "\"");
  if (start == std::string::npos) return {};
  const size_t open = html.rfind("<" + tag, start);
  const size_t close = html.find("</" + tag + ">", start);
  if (open == std::string::npos || close == std::string::npos) return {};
  return html.substr(open, close + tag.size() + 3 - open);
}

}  // namespace kvaudit::report::testing
