// Next-token choice of a served request (SPEC.md §7 `serve`): greedy (temperature 0, the eval's
// choice) or sampled with OpenAI's temperature and top_p (nucleus) parameters, from the request's
// own seeded generator so a seeded request is reproducible whatever else shares its batch.
#pragma once
#include <cstdint>
#include <random>

namespace kvaudit::serve {

struct SamplingParams {
  double temperature = 1.0;  // OpenAI's default; <= 0 is greedy
  double top_p = 1.0;        // (0, 1]: keep the most probable tokens whose mass reaches top_p
};

// Greedy: engine::argmax (first index on ties). Else softmax(logits / temperature) in double,
// restricted to the smallest set of most probable tokens (ties broken by lower id) whose
// probability reaches top_p, renormalized, and one draw of `rng`.
int sample_token(const float* logits, int64_t n_vocab, const SamplingParams& p, std::mt19937_64& rng);

}  // namespace kvaudit::serve
