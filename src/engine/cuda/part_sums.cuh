// Reading a PartSums (ops_cuda.h) on the device: the one place its parts are added, in part order.
#pragma once
#include <algorithm>
#include <cstdint>

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

// part_sum of columns j .. j + 3 at once (16-byte loads: s.p, s.ld, s.stride and j multiples of 4
// floats, sums4_ok), each column's parts added in part order as part_sum adds them.
__device__ inline float4 part_sum4(const PartSums& s, int64_t t, int64_t j) {
  const float* q = s.p + t * s.ld + j;
  float4 v = *reinterpret_cast<const float4*>(q);
  for (int64_t c = 1; c < s.parts; ++c) {
    const float4 g = *reinterpret_cast<const float4*>(q + c * s.stride);
    v = make_float4(__fadd_rn(v.x, g.x), __fadd_rn(v.y, g.y), __fadd_rn(v.z, g.z), __fadd_rn(v.w, g.w));
  }
  return v;
}

inline bool sums4_ok(const PartSums& s) {
  return reinterpret_cast<uintptr_t>(s.p) % 16 == 0 && s.ld % 4 == 0 && (s.parts == 1 || s.stride % 4 == 0);
}

// The grid of an element-wise pass over a [rows][cols] matrix, `per` consecutive columns a thread:
// x along the columns, y a row each (rows past 65,535 taken in turn), so a thread's row and column
// come without a 64-bit division per element.
inline dim3 rows_cols_grid(int64_t rows, int64_t cols, int per, int threads) {
  const int64_t col_blocks = (cols + int64_t(per) * threads - 1) / (int64_t(per) * threads);
  return dim3(unsigned(col_blocks), unsigned(std::min<int64_t>(rows, 65535)));
}

}  // namespace kvaudit::engine::cuda
