#include "cli/token_list.h"

#include <algorithm>
#include <charconv>

#include "core/error.h"

namespace kvaudit::cli {

std::vector<int> parse_token_list(const std::string& s) {
  std::vector<int> ids;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t end = std::min(s.find(',', pos), s.size());
    const std::string item = s.substr(pos, end - pos);
    int v = 0;
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v < 0)
      usage_error("--tokens: '{}' is not a token id (expected a comma-separated list like 1,2,3)", item);
    ids.push_back(v);
    pos = end + 1;
  }
  return ids;
}

}  // namespace kvaudit::cli
