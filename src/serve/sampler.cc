#include "serve/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine/engine.h"

namespace kvaudit::serve {

int sample_token(const float* logits, int64_t n_vocab, const SamplingParams& p, std::mt19937_64& rng) {
  if (p.temperature <= 0) return engine::argmax(logits, n_vocab);
  const double max_logit = *std::max_element(logits, logits + n_vocab);
  std::vector<double> prob(static_cast<size_t>(n_vocab));  // [n_vocab], unnormalized
  for (int64_t i = 0; i < n_vocab; ++i) prob[size_t(i)] = std::exp((double(logits[i]) - max_logit) / p.temperature);
  const double total = std::accumulate(prob.begin(), prob.end(), 0.0);

  std::vector<int> order(static_cast<size_t>(n_vocab));  // token ids, most probable first (id order when top_p >= 1)
  std::iota(order.begin(), order.end(), 0);
  if (p.top_p < 1) std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return prob[size_t(a)] > prob[size_t(b)]; });
  // The nucleus: the shortest prefix of `order` whose mass reaches top_p (at least one token).
  size_t keep = 0;
  double mass = 0;
  while (keep < order.size() && (keep == 0 || mass < p.top_p * total)) mass += prob[size_t(order[keep++])];

  const double u = std::uniform_real_distribution<double>(0.0, mass)(rng);
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += prob[size_t(order[i])];
    if (u < acc) return order[i];
  }
  return order[keep - 1];  // u rounded up to `mass`
}

}  // namespace kvaudit::serve
