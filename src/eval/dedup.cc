#include "eval/dedup.h"

#include <unordered_set>

namespace kvaudit::eval {

namespace {
bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
}  // namespace

std::string dedup_key(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char c : text) {
    if (is_ascii_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
  }
  return out;
}

size_t dedup_prompts(std::vector<Prompt>& prompts) {
  std::unordered_set<std::string> seen;
  std::vector<Prompt> kept;
  kept.reserve(prompts.size());
  for (auto& p : prompts)
    if (seen.insert(dedup_key(p.text)).second) kept.push_back(std::move(p));
  const size_t dropped = prompts.size() - kept.size();
  prompts = std::move(kept);
  return dropped;
}

}  // namespace kvaudit::eval
