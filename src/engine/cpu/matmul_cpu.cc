// y = x @ w.T with a register-tiled AVX2 kernel whose per-output summation order is exactly
// dot()'s, so a token's outputs do not depend on the batch it is in (no BLAS: OpenBLAS picks
// kernels by problem size). A tile of kRows weight rows stays in L1 while it is applied to
// every token of a chunk: batched decode reads each weight once per step, not once per token.
#include <omp.h>

#include <algorithm>

#include "engine/cpu/simd.h"
#include "engine/ops.h"

namespace kvaudit::engine::cpu {
namespace {

constexpr int kRows = 4;               // weight rows per micro-tile
constexpr int kTokens = 3;             // tokens per micro-tile (4*3 accumulators + 3 x + 1 w = 16 ymm)
constexpr int64_t kRowBlock = 32;      // weight rows per parallel work item
constexpr int64_t kTokenChunk = 96;    // tokens whose x rows stay in L2 while weights stream

// y[t*ldy + r] = dot(x[t], w[r]) for r < R, t < T.
template <int R, int T>
void micro_tile(const float* x, int64_t k, const float* w, float* y, int64_t ldy) {
  __m256 acc[R][T];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= k; c += 8) {
    __m256 xv[T];
#pragma GCC unroll 3
    for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x + t * k + c);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_loadu_ps(w + r * k + c);
#pragma GCC unroll 3
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(xv[t], wv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = dot_tail(x + t * k, w + r * k, c, k, hsum8(acc[r][t]));
}

using TileFn = void (*)(const float*, int64_t, const float*, float*, int64_t);

template <int R>
constexpr TileFn tile_for(int t) {
  return t == 1 ? micro_tile<R, 1> : t == 2 ? micro_tile<R, 2> : micro_tile<R, 3>;
}

TileFn tile_fn(int r, int t) {
  switch (r) {
    case 1: return tile_for<1>(t);
    case 2: return tile_for<2>(t);
    case 3: return tile_for<3>(t);
    default: return tile_for<4>(t);
  }
}

}  // namespace

float dot(const float* a, const float* b, int64_t n) { return dot_inline(a, b, n); }

void matmul(const float* x, int64_t n, int64_t k, const float* w, int64_t m, float* y) {
  const int64_t n_blocks = (m + kRowBlock - 1) / kRowBlock;
  for (int64_t t0 = 0; t0 < n; t0 += kTokenChunk) {
    const int64_t tn = std::min(kTokenChunk, n - t0);
#pragma omp parallel for schedule(dynamic) if (n_blocks > 1)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t r_end = std::min(m, (b + 1) * kRowBlock);
      for (int64_t r = b * kRowBlock; r < r_end; r += kRows) {
        const int rr = int(std::min<int64_t>(kRows, r_end - r));
        for (int64_t t = 0; t < tn; t += kTokens) {
          const int tt = int(std::min<int64_t>(kTokens, tn - t));
          tile_fn(rr, tt)(x + (t0 + t) * k, k, w + r * k, y + (t0 + t) * m + r, m);
        }
      }
    }
  }
}

void add_bias(float* y, int64_t n, int64_t m, const float* bias) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < m; ++o) y[t * m + o] += bias[o];
}

}  // namespace kvaudit::engine::cpu
