// A tokenizer.json pattern: {"String": "..."} (literal) or {"Regex": "..."} (PCRE2).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/regex.h"

namespace kvaudit::text {

class StringPattern {
 public:
  StringPattern(const nlohmann::json& j, const std::string& what);
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;
  std::string replace_all(std::string_view s, std::string_view content) const;

 private:
  std::string literal_;
  std::shared_ptr<Regex> regex_;
};

}  // namespace kvaudit::text
