// Causal scaled-dot-product attention with GQA, soft-capping and sliding window (ops.h), one
// query head at a time; scores and softmax in float32 as eager_attention_forward does.
#include <algorithm>
#include <vector>

#include "engine/cpu/simd.h"
#include "engine/ops.h"

namespace kvaudit::engine::cpu {
namespace {

// acc[c] = fma(a[j], v[j][c], acc[c]) for j = 0..n-1 in order, each element summed over keys
// left to right (the scalar definition). Eight vectors of the row stay in registers across the
// key loop so the eight FMA chains overlap; the per-element order is the scalar one, so this only
// changes speed.
void weighted_sum(const float* a, const float* v, int64_t stride, int64_t n, int d, float* acc) {
  int c = 0;
  for (; c + 64 <= d; c += 64) {
    __m256 s[8];
    for (int u = 0; u < 8; ++u) s[u] = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const __m256 w = _mm256_set1_ps(a[j]);
      const float* vj = v + j * stride + c;
#pragma GCC unroll 8
      for (int u = 0; u < 8; ++u) s[u] = _mm256_fmadd_ps(w, _mm256_loadu_ps(vj + 8 * u), s[u]);
    }
    for (int u = 0; u < 8; ++u) _mm256_storeu_ps(acc + c + 8 * u, s[u]);
  }
  for (; c + 8 <= d; c += 8) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) s = _mm256_fmadd_ps(_mm256_set1_ps(a[j]), _mm256_loadu_ps(v + j * stride + c), s);
    _mm256_storeu_ps(acc + c, s);
  }
  for (; c < d; ++c) {
    float s = 0.0f;
    for (int64_t j = 0; j < n; ++j) s = std::fma(a[j], v[j * stride + c], s);
    acc[c] = s;
  }
}

}  // namespace

void attention_head(const AttentionParams& p, int h, const float* q, int64_t n_q, int64_t first_pos,
                    const float* k, const float* v, int64_t n_kv, float* out) {
  const int d = p.head_dim;
  const int64_t q_stride = int64_t(p.n_heads) * d;
  const int64_t kv_stride = int64_t(p.n_kv_heads) * d;
  const int kv_h = h / (p.n_heads / p.n_kv_heads);  // repeat_kv
  std::vector<float> scores(size_t(std::max<int64_t>(n_kv, 1)));  // [visible keys]
  std::vector<float> acc(static_cast<size_t>(d));                             // [head_dim]
  for (int64_t i = 0; i < n_q; ++i) {
    const int64_t pos = first_pos + i;
    const int64_t j0 = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
    const int64_t n = pos + 1 - j0;
    const float* qi = q + i * q_stride + int64_t(h) * d;
    for (int64_t j = 0; j < n; ++j) {
      // (q @ k.T) * scaling
      float s = dot_inline(qi, k + (j0 + j) * kv_stride + int64_t(kv_h) * d, d) * p.scale;
      if (p.softcap > 0) s = softcap(s, p.softcap);  // tanh(s / cap) * cap
      scores[size_t(j)] = s;
    }
    softmax(scores.data(), n);
    // attn_weights @ v, accumulated over keys in order
    weighted_sum(scores.data(), v + j0 * kv_stride + int64_t(kv_h) * d, kv_stride, n, d, acc.data());
    std::copy(acc.begin(), acc.end(), out + i * q_stride + int64_t(h) * d);
  }
}

void attention(const AttentionParams& p, const float* q, int64_t n_q, int64_t first_pos,
               const float* k, const float* v, int64_t n_kv, float* out) {
#pragma omp parallel for schedule(dynamic)
  for (int h = 0; h < p.n_heads; ++h) attention_head(p, h, q, n_q, first_pos, k, v, n_kv, out);
}

}  // namespace kvaudit::engine::cpu
