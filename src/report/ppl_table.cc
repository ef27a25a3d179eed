#include "report/ppl_table.h"

#include <cstdarg>
#include <cstdio>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace kvaudit::report {

namespace {

// printf formatting into a string: the table's bytes are what std::printf gave before it moved
// here, "nan" included.
[[gnu::format(printf, 1, 2)]] std::string cformat(const char* f, ...) {
  va_list args, again;
  va_start(args, f);
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, f, args);
  va_end(args);
  std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), out.size() + 1, f, again);
  va_end(again);
  return out;
}

void check_sizes(const PplRun& r) {
  if (r.results.empty() || r.results.size() != r.schemes.size())
    throw std::logic_error("ppl table: " + std::to_string(r.schemes.size()) + " schemes, " +
                           std::to_string(r.results.size()) + " results");
}

}  // namespace

std::string format_ppl_table(const PplRun& r) {
  check_sizes(r);
  std::string out = cformat("%s: %zu tokens, %zu windows of %zu (stride %zu), %zu targets scored\n",
                            r.text_path.c_str(), r.n_tokens, r.n_windows, r.window, r.stride, r.results[0].n_scored);
  out += cformat("%-24s %12s %10s %12s\n", "scheme", "ppl", "ratio", "KL");
  for (size_t s = 0; s < r.schemes.size(); ++s)
    out += cformat("%-24s %12.4f %10.4f %12.6f\n", r.schemes[s].c_str(), r.results[s].ppl, r.results[s].ppl_ratio,
                   r.results[s].kl);
  return out;
}

std::string ppl_json(const PplRun& r) {
  check_sizes(r);
  nlohmann::ordered_json j;
  j["text"] = r.text_path;
  j["tokens"] = r.n_tokens;
  j["windows"] = r.n_windows;
  for (size_t s = 0; s < r.schemes.size(); ++s)
    j["results"][r.schemes[s]] = {{"ppl", r.results[s].ppl}, {"ppl_ratio", r.results[s].ppl_ratio},
                                  {"kl", r.results[s].kl}, {"n_scored", r.results[s].n_scored}};
  return j.dump(2) + "\n";
}

}  // namespace kvaudit::report
