#include "text/string_pattern.h"

#include "core/error.h"

namespace kvaudit::text {

StringPattern::StringPattern(const nlohmann::json& j, const std::string& what) {
  if (j.contains("String")) {
    literal_ = j.at("String").get<std::string>();
  } else if (j.contains("Regex")) {
    regex_ = std::make_shared<Regex>(j.at("Regex").get<std::string>(), what);
  } else {
    usage_error("{}: pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}", what);
  }
}

std::vector<std::pair<size_t, size_t>> StringPattern::find_all(std::string_view s) const {
  if (regex_) return regex_->find_all(s);
  std::vector<std::pair<size_t, size_t>> out;
  if (literal_.empty()) return out;
  for (size_t p = s.find(literal_); p != std::string_view::npos; p = s.find(literal_, p + literal_.size()))
    out.emplace_back(p, p + literal_.size());
  return out;
}

std::string StringPattern::replace_all(std::string_view s, std::string_view content) const {
  std::string out;
  size_t last = 0;
  for (auto [b, e] : find_all(s)) {
    out.append(s.substr(last, b - last));
    out.append(content);
    last = e;
  }
  out.append(s.substr(last));
  return out;
}

}  // namespace kvaudit::text
