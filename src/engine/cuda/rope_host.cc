// The host half of the CUDA backend's RoPE (ops_cuda.h): the cos/sin table, and the rotation of
// the K rows the host caches store. Built by the host compiler with -ffp-contract=off, so both
// round as cpu::rope (engine/cpu/rope_cpu.cc) does.
#include <cmath>

#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {

void rope_table(const std::vector<float>& inv_freq, float attn_factor, int64_t first_pos, int64_t n,
                std::vector<float>& cs) {
  const int half = int(inv_freq.size());
  for (int64_t t = 0; t < n; ++t) {
    const float pos = float(first_pos + t);
    const size_t base = cs.size();
    cs.resize(base + size_t(2 * half));
    for (int i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[size_t(i)];
      cs[base + size_t(i)] = std::cos(angle) * attn_factor;
      cs[base + size_t(half + i)] = std::sin(angle) * attn_factor;
    }
  }
}

void rope_host(float* x, int64_t n, int n_heads, int head_dim, int half, const float* cs) {
  for (int64_t t = 0; t < n; ++t) {
    const float* c = cs + t * 2 * half;
    for (int h = 0; h < n_heads; ++h) {
      float* xh = x + (t * n_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float x0 = xh[i], x1 = xh[i + half];
        xh[i] = x0 * c[i] - x1 * c[half + i];
        xh[i + half] = x1 * c[i] + x0 * c[half + i];
      }
    }
  }
}

}  // namespace kvaudit::engine::cuda
