// y = x @ w.T with a register-tiled AVX2 kernel whose per-output summation order is exactly
// dot()'s, so a token's outputs do not depend on the batch it is in (no BLAS: OpenBLAS picks
// kernels by problem size). A tile of kRows weight rows stays in L1 while it is applied to
// every token of a chunk: batched decode reads each weight once per step, not once per token.
#include <omp.h>

#include <algorithm>
#include <utility>

#include "engine/cpu/simd.h"
#include "engine/ops.h"

namespace kvaudit::engine::cpu {
namespace {

constexpr int kRows = 4;               // weight rows per micro-tile
constexpr int kTokens = 3;             // tokens per micro-tile (4*3 accumulators + 3 x + 1 w = 16 ymm)
constexpr int64_t kRowBlock = 32;      // weight rows per parallel work item
constexpr int64_t kTokenChunk = 96;    // tokens whose x rows stay in L2 while weights stream
constexpr int64_t kPrefetchAhead = 16;  // rows between a row group and the rows its tiles prefetch
constexpr int64_t kLineFloats = 16;     // floats per 64-byte cache line

// y[t*ldy + r] = dot(x[t], w[r]) for r < R, t < T. While it computes, the tile also prefetches
// pf_lines cache lines from pf on: its share of the weight rows of a later row group. Without it a
// batched step waits on DRAM at every new row group (4 short interleaved streams the hardware
// prefetcher barely follows); spreading the lines over all token tiles of a group keeps a dozen
// misses in flight instead of a burst the fill buffers drop. Prefetching never changes a result.
template <int R, int T>
void micro_tile(const float* x, int64_t k, const float* w, float* y, int64_t ldy, const float* pf, int pf_lines) {
  __m256 acc[R][T];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  const int64_t steps = std::max<int64_t>(1, k / 8);
  const int per_step = int((pf_lines + steps - 1) / steps);
  int line = 0;
  int64_t c = 0;
  for (; c + 8 <= k; c += 8) {
    for (int i = 0; i < per_step && line < pf_lines; ++i, ++line)
      _mm_prefetch(reinterpret_cast<const char*>(pf + kLineFloats * line), _MM_HINT_T0);
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

using TileFn = void (*)(const float*, int64_t, const float*, float*, int64_t, const float*, int);

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

namespace {

// Rows [r0, r_end) of one product for tokens [t0, t0 + tn).
void row_block(const MatmulOut& o, const float* x, int64_t k, int64_t t0, int64_t tn, int64_t r0, int64_t r_end) {
  const int64_t n_tiles = (tn + kTokens - 1) / kTokens;
  for (int64_t r = r0; r < r_end; r += kRows) {
    const int rr = int(std::min<int64_t>(kRows, r_end - r));
    // Rows [pf_row, pf_row + kRows) are contiguous: n_lines cache lines, split evenly over the tiles.
    const int64_t pf_row = r + kPrefetchAhead;
    const int64_t n_lines = pf_row + kRows <= o.m ? (kRows * k + kLineFloats - 1) / kLineFloats : 0;
    for (int64_t i = 0; i < n_tiles; ++i) {
      const int64_t t = i * kTokens;
      const int tt = int(std::min<int64_t>(kTokens, tn - t));
      const int64_t first = i * n_lines / n_tiles, last = (i + 1) * n_lines / n_tiles;
      const float* pf = n_lines > 0 ? o.w + pf_row * k + first * kLineFloats : o.w;
      tile_fn(rr, tt)(x + (t0 + t) * k, k, o.w + r * k, o.y + (t0 + t) * o.m + r, o.m, pf, int(last - first));
    }
  }
}

}  // namespace

void matmul_many(const float* x, int64_t n, int64_t k, std::span<const MatmulOut> outs) {
  // Work items: (product, block of kRowBlock rows), all products in one parallel region so a
  // layer's q/k/v (or gate/up) cost one fork and one barrier, not three.
  std::vector<std::pair<int, int64_t>> items;  // [n_items] (product, first row)
  for (size_t i = 0; i < outs.size(); ++i)
    for (int64_t r = 0; r < outs[i].m; r += kRowBlock) items.emplace_back(int(i), r);
  const int64_t n_items = int64_t(items.size());
  for (int64_t t0 = 0; t0 < n; t0 += kTokenChunk) {
    const int64_t tn = std::min(kTokenChunk, n - t0);
#pragma omp parallel for schedule(dynamic) if (n_items > 1)
    for (int64_t b = 0; b < n_items; ++b) {
      const MatmulOut& o = outs[size_t(items[size_t(b)].first)];
      const int64_t r0 = items[size_t(b)].second;
      row_block(o, x, k, t0, tn, r0, std::min(o.m, r0 + kRowBlock));
    }
  }
}

void matmul(const float* x, int64_t n, int64_t k, const float* w, int64_t m, float* y) {
  const MatmulOut o{w, m, y};
  matmul_many(x, n, k, std::span<const MatmulOut>(&o, 1));
}

void add_bias(float* y, int64_t n, int64_t m, const float* bias) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < m; ++o) y[t * m + o] += bias[o];
}

}  // namespace kvaudit::engine::cpu
