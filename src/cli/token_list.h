// `--tokens 1,2,3` (logits, generate): comma-separated non-negative token ids.
#pragma once
#include <string>
#include <vector>

namespace kvaudit::cli {

// Throws UsageError naming --tokens and the offending item.
std::vector<int> parse_token_list(const std::string& s);

}  // namespace kvaudit::cli
