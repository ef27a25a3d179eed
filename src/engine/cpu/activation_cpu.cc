// Pointwise activations, soft-capping and softmax (ops.h).
#include <algorithm>
#include <cmath>

#include "engine/ops.h"

namespace kvaudit::engine::cpu {

float silu(float x) { return x / (1.0f + std::exp(-x)); }

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

float softcap(float x, float cap) { return cap * std::tanh(x / cap); }

void gated_activation(Activation act, const float* gate, const float* up, int64_t n, int64_t d_ff,
                      int64_t ld, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* g = gate + t * ld;
    const float* u = up + t * ld;
    float* o = out + t * d_ff;
    if (act == Activation::kSilu) {
      for (int64_t j = 0; j < d_ff; ++j) o[j] = silu(g[j]) * u[j];
    } else {
      for (int64_t j = 0; j < d_ff; ++j) o[j] = gelu_tanh(g[j]) * u[j];
    }
  }
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}

void softcap_inplace(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = softcap(x[i], cap);
}

}  // namespace kvaudit::engine::cpu
