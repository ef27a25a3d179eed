#include "eval/dedup.h"

#include <map>
#include <unordered_map>

#include "core/error.h"

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
  std::unordered_map<std::string, std::string> owner;  // key -> the first benchmark holding it
  std::map<std::string, size_t> total, kept_of;        // per benchmark
  std::vector<Prompt> kept;
  kept.reserve(prompts.size());
  for (auto& p : prompts) {
    ++total[p.bench];
    const auto [it, fresh] = owner.emplace(dedup_key(p.text), p.bench);
    if (!fresh && it->second != p.bench) continue;
    ++kept_of[p.bench];
    kept.push_back(std::move(p));
  }
  for (const auto& [bench, n] : total)
    if (n > 0 && kept_of[bench] == 0)
      usage_error("--bench: every prompt of '{}' repeats one of a benchmark named before it, so it would have no "
                  "results; drop it or pass --no-dedup",
                  bench);
  const size_t dropped = prompts.size() - kept.size();
  prompts = std::move(kept);
  return dropped;
}

}  // namespace kvaudit::eval
