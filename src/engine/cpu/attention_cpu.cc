// Causal scaled-dot-product attention with GQA, soft-capping and sliding window (ops.h), one
// query head at a time; scores and softmax in float32 as eager_attention_forward does.
#include <algorithm>
#include <vector>

#include "engine/cpu/simd.h"
#include "engine/ops.h"

namespace kvaudit::engine::cpu {

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
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t j = 0; j < n; ++j) {
      const float a = scores[size_t(j)];
      const float* vj = v + (j0 + j) * kv_stride + int64_t(kv_h) * d;
      for (int c = 0; c < d; ++c) acc[size_t(c)] = std::fma(a, vj[c], acc[size_t(c)]);
    }
    std::copy(acc.begin(), acc.end(), out + i * q_stride + int64_t(h) * d);
  }
}

void attention(const AttentionParams& p, const float* q, int64_t n_q, int64_t first_pos,
               const float* k, const float* v, int64_t n_kv, float* out) {
#pragma omp parallel for schedule(dynamic)
  for (int h = 0; h < p.n_heads; ++h) attention_head(p, h, q, n_q, first_pos, k, v, n_kv, out);
}

}  // namespace kvaudit::engine::cpu
