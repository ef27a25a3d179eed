// What `kvaudit ppl` prints (SPEC.md §4, §7): perplexity, ratio to the baseline and mean token KL
// per scheme, as a fixed-width table or as JSON. Formatting only; cli decides where it goes.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "eval/ppl_runner.h"

namespace kvaudit::report {

struct PplRun {
  std::string text_path;
  size_t n_tokens = 0;   // of the whole encoded text
  size_t n_windows = 0;  // scored (after --max-windows)
  size_t window = 0, stride = 0;
  std::vector<std::string> schemes;      // [n_schemes] names, the baseline first
  std::vector<eval::PplResult> results;  // [n_schemes]
};

// A header line (text, tokens, windows, targets scored by the baseline), then one row per scheme:
// ppl and ratio in %.4f, KL in %.6f (printf: NaN prints as "nan"). Ends in '\n'.
std::string format_ppl_table(const PplRun& r);

// {"text", "tokens", "windows", "results": {scheme: {ppl, ppl_ratio, kl, n_scored}}}, 2-space
// indent, NaN as null, trailing newline.
std::string ppl_json(const PplRun& r);

}  // namespace kvaudit::report
