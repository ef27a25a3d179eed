// Rotary position embedding, NeoX rotate-half pairing (ops.h). Angles are float32 products
// pos * inv_freq as transformers computes them (inv_freq_expanded.float() @ position_ids.float()).
#include <cmath>

#include "engine/ops.h"

namespace kvaudit::engine::cpu {

void rope(float* x, int64_t n, int n_heads, int head_dim, const std::vector<float>& inv_freq,
          float attn_factor, int64_t first_pos) {
  const int half = int(inv_freq.size());
  std::vector<float> cs(size_t(2 * half));  // [cos..., sin...] for one position
  for (int64_t t = 0; t < n; ++t) {
    const float pos = float(first_pos + t);
    for (int i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[size_t(i)];
      cs[size_t(i)] = std::cos(angle) * attn_factor;
      cs[size_t(half + i)] = std::sin(angle) * attn_factor;
    }
    float* row = x + t * int64_t(n_heads) * head_dim;
    for (int h = 0; h < n_heads; ++h) {
      float* xh = row + int64_t(h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float x0 = xh[i], x1 = xh[i + half];
        const float c = cs[size_t(i)], s = cs[size_t(half + i)];
        xh[i] = x0 * c - x1 * s;         // q * cos + (-q2) * sin
        xh[i + half] = x1 * c + x0 * s;  // q2 * cos + q1 * sin
      }
    }
  }
}

}  // namespace kvaudit::engine::cpu
