// Reading a PartSums (ops_cuda.h) on the device: the one place its parts are added, in part order.
#pragma once
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {

// The parts' loads go out kGroup at a time before their additions (a row of few rows is latency
// bound: one load after another would wait on each), the additions in part order.
__device__ inline float part_sum(const PartSums& s, int64_t t, int64_t j) {
  constexpr int kGroup = 8;
  const float* q = s.p + t * s.ld + j;
  float v = q[0];
  for (int64_t c = 1; c < s.parts; c += kGroup) {
    float g[kGroup];
#pragma unroll
    for (int u = 0; u < kGroup; ++u) g[u] = c + u < s.parts ? q[(c + u) * s.stride] : 0.0f;
#pragma unroll
    for (int u = 0; u < kGroup; ++u)
      if (c + u < s.parts) v = __fadd_rn(v, g[u]);
  }
  return v;
}

}  // namespace kvaudit::engine::cuda
