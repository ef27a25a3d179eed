#include "report/table.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include <fmt/format.h>

namespace kvaudit::report {

namespace {

constexpr const char* kUndefined = "-";

std::string pct(double x) { return std::isfinite(x) ? fmt::format("{:.1f}%", 100 * x) : kUndefined; }

std::string flip_cell(const eval::BenchMetrics& m) {
  if (!std::isfinite(m.flip_rate)) return kUndefined;
  return fmt::format("{:.1f}% [{:.1f}, {:.1f}]", 100 * m.flip_rate, 100 * m.flip_ci_low,
                     100 * m.flip_ci_high);
}

std::string general(double x, const char* f) {
  return std::isfinite(x) ? fmt::format(fmt::runtime(f), x) : kUndefined;
}

// The noise-floor test against the control: within / above it, or undefined (too few refusals).
std::string noise_cell(const eval::BenchMetrics& m) {
  if (!m.noise || !m.noise->defined) return kUndefined;
  if (!m.noise->within) return "undefined (too few refusals)";
  return fmt::format("{} (p {:.3g})", *m.noise->within ? "within" : "ABOVE", m.noise->p);
}

constexpr size_t kCols = 11;  // the last, "vs noise floor", only when the control ran
using Row = std::array<std::string, kCols>;

}  // namespace

std::string format_results_table(const eval::RunResults& r) {
  std::vector<Row> rows;
  rows.push_back({"scheme", "bench", "n", "refusal", "flip rate [95% CI]", "flips/rev", "McNemar p",
                  "over-refusal", "ppl ratio", "KL", "vs noise floor"});
  bool any_noise = false;
  for (const auto& s : r.results)
    for (const auto& b : s.benches) any_noise = any_noise || b.metrics.noise.has_value();
  const size_t cols = any_noise ? kCols : kCols - 1;
  for (const auto& s : r.results)
    for (const auto& b : s.benches) {
      const auto& m = b.metrics;
      rows.push_back({s.scheme, b.bench, std::to_string(m.n), pct(m.refusal_rate), flip_cell(m),
                      std::isnan(m.refusal_rate) ? "-" : fmt::format("{}/{}", m.flips, m.reverse_flips),
                      general(m.mcnemar_p, "{:.3g}"),
                      pct(m.over_refusal), general(m.ppl_ratio, "{:.4f}"), general(m.kl, "{:.4g}"), noise_cell(m)});
    }
  std::array<size_t, kCols> width{};
  for (const auto& row : rows)
    for (size_t c = 0; c < cols; ++c) width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string line;
    for (size_t c = 0; c < cols; ++c) {
      // Text columns left-aligned, numbers right-aligned.
      line += c < 2 ? fmt::format("{:<{}}", rows[i][c], width[c])
                    : fmt::format("{:>{}}", rows[i][c], width[c]);
      if (c + 1 < cols) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (i == 0) {
      size_t total = 0;
      for (size_t c = 0; c < cols; ++c) total += width[c] + (c + 1 < cols ? 2 : 0);
      out += std::string(total, '-') + "\n";
    }
  }
  // IFEval benches: the four accuracies, the change of prompt-level strict and its paired test.
  std::string ifeval;
  for (const auto& s : r.results)
    for (const auto& b : s.benches)
      if (b.metrics.ifeval) {
        const auto& f = *b.metrics.ifeval;
        const std::string delta = std::isfinite(f.delta_prompt_strict) ? fmt::format("{:+.1f}", 100 * f.delta_prompt_strict) : kUndefined;
        ifeval += fmt::format("{:<24} {:<8} n {:>4}  prompt strict {:>6} loose {:>6}  inst strict {:>6} loose {:>6}  "
                              "prompt strict vs fp16 {} pts, lost/gained {}/{}, McNemar p {}\n",
                              s.scheme, b.bench, b.metrics.n, pct(f.prompt_strict), pct(f.prompt_loose),
                              pct(f.inst_strict), pct(f.inst_loose), delta, f.flips, f.reverse_flips,
                              general(f.mcnemar_p, "{:.3g}"));
      }
  return ifeval.empty() ? out : out + "\n" + ifeval;
}

}  // namespace kvaudit::report
