#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "eval/metrics.h"

namespace kvaudit::eval {

std::vector<PplWindow> ppl_windows(size_t n_tokens, size_t window, size_t stride) {
  if (stride == 0 || window < stride)
    throw std::logic_error("ppl_windows: need window >= stride >= 1");
  std::vector<PplWindow> out;
  if (n_tokens < 2) return out;
  size_t prev_end = 0;
  for (size_t begin = 0; begin < n_tokens; begin += stride) {
    const size_t end = std::min(begin + window, n_tokens);
    out.push_back({begin, end, std::max(prev_end, begin + 1)});
    prev_end = end;
    if (end == n_tokens) break;
  }
  return out;
}

double perplexity(double nll_sum, size_t n_scored) {
  return n_scored == 0 ? kNaN : std::exp(nll_sum / double(n_scored));
}

namespace {
// log sum_v exp(x_v), stable.
double log_sum_exp(std::span<const float> x) {
  double m = -INFINITY;
  for (float v : x) m = std::max(m, double(v));
  double s = 0;
  for (float v : x) s += std::exp(double(v) - m);
  return m + std::log(s);
}
}  // namespace

double token_nll(std::span<const float> logits, size_t target) {
  if (target >= logits.size()) throw std::logic_error("token_nll: target outside the vocabulary");
  return log_sum_exp(logits) - double(logits[target]);
}

double token_kl(std::span<const float> base_logits, std::span<const float> quant_logits) {
  if (base_logits.size() != quant_logits.size())
    throw std::logic_error("token_kl: logit rows differ in size");
  const double lse_p = log_sum_exp(base_logits), lse_q = log_sum_exp(quant_logits);
  double kl = 0;
  for (size_t v = 0; v < base_logits.size(); ++v) {
    if (base_logits[v] == -INFINITY) continue;  // p_v = 0 adds nothing (masked / soft-capped)
    const double lp = double(base_logits[v]) - lse_p;
    const double lq = double(quant_logits[v]) - lse_q;
    kl += std::exp(lp) * (lp - lq);
  }
  return std::max(0.0, kl);  // KL >= 0; rounding can leave -1e-17 for identical rows
}

double MeanAccumulator::mean() const { return n_ == 0 ? kNaN : sum_ / double(n_); }

}  // namespace kvaudit::eval
