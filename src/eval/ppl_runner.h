// Perplexity and KL to the baseline over a token stream (SPEC.md §4: `--text FILE`, window 2048,
// stride 512), each scheme scored on the same windows (eval/perplexity.h).
#pragma once
#include <cstddef>
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

struct PplResult {
  double ppl = kNaN;
  double ppl_ratio = kNaN;  // ppl / the baseline's (schemes[0])
  double kl = kNaN;         // mean over scored tokens of KL(P_baseline || P_scheme); 0 for the baseline
  size_t n_scored = 0;      // targets scored
};

// One result per scheme, in order; schemes[0] is the baseline. Each window is one prefill
// (all_logits) of a fresh sequence per scheme, so quantization sees the window as its prompt.
std::vector<PplResult> run_perplexity(engine::Backend& backend, const std::vector<int>& tokens,
                                      const std::vector<SchemeRun>& schemes, const PplOptions& opt,
                                      Progress* progress = nullptr);

}  // namespace kvaudit::eval
