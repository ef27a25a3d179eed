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

// out[j] = dot(q, k[j]) for n keys (row stride `stride`), each exactly dot_inline()'s sum; four
// keys at a time so their FMA chains and horizontal sums overlap (one chain per key is latency-bound).
void key_scores(const float* q, const float* k, int64_t stride, int64_t n, int d, float* out) {
  int64_t j = 0;
  const int dv = d / 8 * 8;
  for (; j + 4 <= n; j += 4) {
    const float* k0 = k + j * stride;
    const float* k1 = k0 + stride;
    const float* k2 = k1 + stride;
    const float* k3 = k2 + stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int c = 0; c < dv; c += 8) {
      const __m256 qv = _mm256_loadu_ps(q + c);
      a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + c), a0);
      a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + c), a1);
      a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + c), a2);
      a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + c), a3);
    }
    out[j] = dot_tail(q, k0, dv, d, hsum8(a0));
    out[j + 1] = dot_tail(q, k1, dv, d, hsum8(a1));
    out[j + 2] = dot_tail(q, k2, dv, d, hsum8(a2));
    out[j + 3] = dot_tail(q, k3, dv, d, hsum8(a3));
  }
  for (; j < n; ++j) out[j] = dot_inline(q, k + j * stride, d);
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
    // (q @ k.T) * scaling, then tanh(s / cap) * cap
    key_scores(qi, k + j0 * kv_stride + int64_t(kv_h) * d, kv_stride, n, d, scores.data());
    for (int64_t j = 0; j < n; ++j) {
      float s = scores[size_t(j)] * p.scale;
      if (p.softcap > 0) s = softcap(s, p.softcap);
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
