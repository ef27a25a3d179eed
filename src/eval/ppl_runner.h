// Perplexity and KL to the baseline over a token stream (SPEC.md §4: `--text FILE`, window 2048,
// stride 512), each scheme scored on the same windows (eval/perplexity.h).
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <vector>

#include "engine/engine.h"
#include "eval/perplexity.h"
#include "eval/progress.h"
#include "eval/runner.h"

namespace kvaudit::eval {

struct PplOptions {
  size_t window = kPplWindow;
  size_t stride = kPplStride;
  size_t max_windows = 0;  // score only the first N windows (0 = all), for CPU budgets
  // Score only the targets predicted from window positions >= this (t - begin > score_from). With
  // window = stride = 512 and 256 this scores what llama.cpp's llama-perplexity scores (the second
  // half of each chunk; tools/check_llama_cpp_kv.sh).
  size_t score_from = 0;
};

// Targets each window after the first leaves unscored between it and the previous one: nonzero
// when score_from + stride >= window (llama-perplexity's mode, window = stride, scores only the
// second half of each chunk), 0 when the windows' scored spans meet.
size_t ppl_gap_per_window(const PplOptions& opt);

struct PplResult {
  double ppl = kNaN;
  double ppl_ratio = kNaN;  // ppl / the baseline's (schemes[0])
  double kl = kNaN;         // mean over scored tokens of KL(P_baseline || P_scheme); 0 for the baseline
  size_t n_scored = 0;      // targets scored
};

// One window's sums, per scheme: all a run keeps of a window, so a resumed run reads them back
// instead of recomputing it (eval/ppl_log.h). Totals add windows in order, so a resumed run's
// results equal an uninterrupted run's bit for bit.
struct PplWindowSums {
  size_t window = 0;        // index into ppl_windows(...)
  size_t n_targets = 0;     // targets scored in this window
  std::vector<double> nll;  // [n_schemes] sum of the targets' NLL
  std::vector<double> kl;   // [n_schemes] sum of the targets' KL to the baseline (0 for the baseline)
};

// Resume: windows finished by an earlier run are taken from `done`; each newly finished window is
// passed to `on_window` (which appends it to the log) before the next one starts.
struct PplCheckpoint {
  std::map<size_t, PplWindowSums> done;
  std::function<void(const PplWindowSums&)> on_window;
};

// One result per scheme, in order; schemes[0] is the baseline. Each window is one prefill
// (all_logits) of a fresh sequence per scheme, so quantization sees the window as its prompt.
std::vector<PplResult> run_perplexity(engine::Backend& backend, const std::vector<int>& tokens,
                                      const std::vector<SchemeRun>& schemes, const PplOptions& opt,
                                      Progress* progress = nullptr, const PplCheckpoint* checkpoint = nullptr);

}  // namespace kvaudit::eval
