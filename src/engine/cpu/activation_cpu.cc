// Pointwise activations, soft-capping and softmax (ops.h).
#include <algorithm>
#include <cmath>

#include "engine/cpu/simd.h"
#include "engine/ops.h"

namespace kvaudit::engine::cpu {

namespace {

// x / (1 + e^-x) for 8 lanes (exp8: within ~1 ulp of std::exp).
inline __m256 silu8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// o[j] = silu(g[j]) * u[j] for j < n. The tail goes through the same 8-lane code (zero-padded),
// so an element's value never depends on n or on where it sits in the row.
void silu_mul(const float* g, const float* u, int64_t n, float* o) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    _mm256_storeu_ps(o + j, _mm256_mul_ps(silu8(_mm256_loadu_ps(g + j)), _mm256_loadu_ps(u + j)));
  if (j < n) {
    alignas(32) float gb[8] = {}, ub[8] = {}, ob[8];  // [8] zero-padded tail
    std::copy(g + j, g + n, gb);
    std::copy(u + j, u + n, ub);
    _mm256_store_ps(ob, _mm256_mul_ps(silu8(_mm256_load_ps(gb)), _mm256_load_ps(ub)));
    std::copy(ob, ob + (n - j), o + j);
  }
}

}  // namespace

float silu(float x) {
  float g = x, u = 1.0f, o = 0.0f;
  silu_mul(&g, &u, 1, &o);
  return o;
}

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

float softcap(float x, float cap) { return cap * std::tanh(x / cap); }

void gated_activation(Activation act, const float* gate, const float* up, int64_t n, int64_t d_ff,
                      int64_t ld, float* out) {
  // Element-wise, so splitting tokens over threads cannot change any value. Only when rows are
  // dense (ld == d_ff): with a fused gate|up layout an in-place out row overlaps later tokens' input.
#pragma omp parallel for schedule(static) if (n > 1 && ld == d_ff)
  for (int64_t t = 0; t < n; ++t) {
    const float* g = gate + t * ld;
    const float* u = up + t * ld;
    float* o = out + t * d_ff;
    if (act == Activation::kSilu) {
      silu_mul(g, u, d_ff, o);
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
