// Perplexity by sliding windows and token KL divergence (SPEC.md §4: `--text FILE`, window 2048,
// stride 512, ratio to baseline; mean token KL to the baseline distribution).
#pragma once
#include <cstddef>
#include <span>
#include <vector>

namespace kvaudit::eval {

inline constexpr size_t kPplWindow = 2048;
inline constexpr size_t kPplStride = 512;

// One forward pass over tokens [begin, end); the targets scored are [score_from, end): target t is
// predicted by the logits at position t - 1, so score_from >= begin + 1.
struct PplWindow {
  size_t begin = 0;
  size_t end = 0;
  size_t score_from = 0;
};

// The windows of Hugging Face's "Perplexity of fixed-length models" guide: begin = 0, stride,
// 2·stride, ...; end = min(begin + window, n_tokens); each window scores only the tokens the
// previous one did not (score_from = previous end); stop after the window that reaches n_tokens.
// Token 0 has no context and is never scored, so the windows score n_tokens - 1 targets in all when
// window > stride (with window = stride, the runner also skips each window's first token: no
// context in its window).
// n_tokens < 2 -> no windows. window >= stride >= 1 (else logic_error).
std::vector<PplWindow> ppl_windows(size_t n_tokens, size_t window = kPplWindow,
                                   size_t stride = kPplStride);

// exp(nll_sum / n_scored) with nll in nats; NaN when n_scored == 0.
double perplexity(double nll_sum, size_t n_scored);

// -log softmax(logits)[target], in double. logits: [n_vocab].
double token_nll(std::span<const float> logits, size_t target);

// KL(P || Q) = sum_v p_v (log p_v - log q_v) with P = softmax(base), Q = softmax(quant), both
// log-softmaxed in double. base, quant: [n_vocab], same size (else logic_error).
double token_kl(std::span<const float> base_logits, std::span<const float> quant_logits);

// Running mean of per-token KL; mean() is NaN before any token.
class MeanAccumulator {
 public:
  void add(double x) {
    sum_ += x;
    ++n_;
  }
  size_t count() const { return n_; }
  double mean() const;

 private:
  double sum_ = 0;
  size_t n_ = 0;
};

}  // namespace kvaudit::eval
