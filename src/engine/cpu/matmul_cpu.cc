// y = x @ w.T with a register-tiled AVX2 kernel whose per-output summation order is exactly
// dot()'s, so a token's outputs do not depend on the batch it is in (no BLAS: OpenBLAS picks
// kernels by problem size). A tile of kRows weight rows stays in L1 while it is applied to
// every token of a chunk: batched decode reads each weight once per step, not once per token.
//
// Weights are read in the encoding the file stores (model/weight.h): the tile decodes 8 weights
// at a time into a register (engine/cpu/dequant_simd.h) right before the FMAs that use them, in
// the same column order as the fp32 path, so every output is bit-identical to the product with
// the fp32-expanded matrix while a decode step reads the file's bytes, not 4 per weight.
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>
#include <utility>

#include "core/error.h"
#include "engine/cpu/dequant_simd.h"
#include "engine/cpu/simd.h"
#include "engine/ops.h"
#include "model/weight.h"

namespace kvaudit::engine::cpu {
namespace {

constexpr int kRows = 4;               // weight rows per micro-tile
constexpr int64_t kRowBlock = 32;      // weight rows per parallel work item
constexpr int64_t kTokenChunk = 96;    // tokens whose x rows stay in L2 while weights stream
constexpr int64_t kPrefetchAhead = 16;  // rows between a row group and the rows its tiles prefetch
constexpr int64_t kLineBytes = 64;

// Tokens per micro-tile: 4*3 accumulators + 3 x + 1 w = 16 ymm for fp32; decoding a quantized
// chunk needs a few more registers (masks, scales), so those tiles take 2 tokens.
template <class D>
constexpr int kTokens = D::kGroup == 8 ? 3 : 2;

// The cache lines of the kRows rows a tile prefetches (a later row group), walked line by line.
struct Prefetch {
  const uint8_t* rows[kRows];
  int64_t lines_per_row;
  int64_t line, end;  // [line, end) of rows * lines_per_row
  void next() {
    const int64_t r = line / lines_per_row, c = line % lines_per_row;
    _mm_prefetch(reinterpret_cast<const char*>(rows[r] + c * kLineBytes), _MM_HINT_T0);
    ++line;
  }
};

// y[t*ldy + r] = dot(x[t], w[r]) for r < R, t < T, w[r] the decoded row rows[r]. While it
// computes, the tile also prefetches its share of the weight rows of a later row group. Without it
// a batched step waits on DRAM at every new row group (4 short interleaved streams the hardware
// prefetcher barely follows); spreading the lines over all token tiles of a group keeps a dozen
// misses in flight instead of a burst the fill buffers drop. Prefetching never changes a result.
template <class D, int R, int T>
void micro_tile(const float* x, int64_t k, const uint8_t* const* rows, float* y, int64_t ldy, Prefetch pf) {
  constexpr int kChunks = D::kGroup / 8;
  __m256 acc[R][T];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  const int64_t groups = k / D::kGroup;
  const int64_t per_group = groups > 0 ? (pf.end - pf.line + groups - 1) / groups : 0;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t i = 0; i < per_group && pf.line < pf.end; ++i) pf.next();
    const int64_t c = g * D::kGroup;
    if constexpr (kChunks == 1) {  // plain types: each x chunk is loaded once for the R rows
      __m256 xv[T];
#pragma GCC unroll 3
      for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x + t * k + c);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m256 wv = D::load(rows[r], g, 0);
#pragma GCC unroll 3
        for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(xv[t], wv, acc[r][t]);
      }
    } else {  // blocks: a row's block scales are decoded once for its 4 chunks (x chunks come from L1)
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const typename D::Block blk = D::block(rows[r], g);
#pragma GCC unroll 4
        for (int i = 0; i < kChunks; ++i) {
          const __m256 wv = D::chunk(blk, i);
#pragma GCC unroll 3
          for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(_mm256_loadu_ps(x + t * k + c + 8 * i), wv, acc[r][t]);
        }
      }
    }
  }
  // Plain types only: quantized rows are whole blocks of 32 (ggml_row_bytes checks it).
  const int64_t c0 = groups * D::kGroup;
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      float s = hsum8(acc[r][t]);
      if constexpr (D::kGroup == 8)
        for (int64_t c = c0; c < k; ++c) s = std::fma(x[t * k + c], D::scalar(rows[r], c), s);
      y[t * ldy + r] = s;
    }
}

using TileFn = void (*)(const float*, int64_t, const uint8_t* const*, float*, int64_t, Prefetch);

template <class D, int R>
constexpr TileFn tile_for(int t) {
  if constexpr (kTokens<D> == 3) return t == 1 ? micro_tile<D, R, 1> : t == 2 ? micro_tile<D, R, 2> : micro_tile<D, R, 3>;
  return t == 1 ? micro_tile<D, R, 1> : micro_tile<D, R, 2>;
}

template <class D>
TileFn tile_fn(int r, int t) {
  switch (r) {
    case 1: return tile_for<D, 1>(t);
    case 2: return tile_for<D, 2>(t);
    case 3: return tile_for<D, 3>(t);
    default: return tile_for<D, 4>(t);
  }
}

// Tokens from which a row group is decoded once into a per-thread fp32 buffer and the fp32 tiles
// run on it (prefill, batched decode), rather than decoded again in every token tile (decode).
constexpr int64_t kBufferedTokens = 6;

// Decodes rows[0..rr) (k columns each) into buf [rr, k] with the decoder's own loads: the same
// floats the fused tiles compute, so either path gives the same bits.
template <class D>
void decode_rows(const uint8_t* const* rows, int rr, int64_t k, float* buf) {
  const int64_t groups = k / D::kGroup;
  for (int r = 0; r < rr; ++r) {
    float* out = buf + r * k;
    for (int64_t g = 0; g < groups; ++g) {
      const typename D::Block blk = D::block(rows[r], g);
#pragma GCC unroll 4
      for (int i = 0; i < D::kGroup / 8; ++i) _mm256_storeu_ps(out + g * D::kGroup + 8 * i, D::chunk(blk, i));
    }
    if constexpr (D::kGroup == 8)
      for (int64_t c = groups * D::kGroup; c < k; ++c) out[c] = D::scalar(rows[r], c);
  }
}

// Rows [r0, r_end) of one product for tokens [t0, t0 + tn).
template <class D>
void row_block(const model::WeightMatrix& w, float* y, const float* x, int64_t k, int64_t t0, int64_t tn, int64_t r0,
               int64_t r_end) {
  // Plain fp32 rows are used in place; other encodings with many tokens go through the buffer.
  constexpr bool kIsF32 = std::is_same_v<D, dequant::F32>;
  const bool buffered = !kIsF32 && tn >= kBufferedTokens;
  const int kT = buffered ? kTokens<dequant::F32> : kTokens<D>;
  const int64_t m = w.rows();
  const int64_t n_tiles = (tn + kT - 1) / kT;
  const int64_t lines_per_row = (int64_t(w.row_bytes()) + kLineBytes - 1) / kLineBytes;
  thread_local std::vector<float> buf;
  if (buffered) buf.resize(size_t(kRows * k));
  for (int64_t r = r0; r < r_end; r += kRows) {
    const int rr = int(std::min<int64_t>(kRows, r_end - r));
    const uint8_t* rows[kRows];
    for (int i = 0; i < rr; ++i) rows[i] = w.row(r + i);
    if (buffered) {
      decode_rows<D>(rows, rr, k, buf.data());
      for (int i = 0; i < rr; ++i) rows[i] = reinterpret_cast<const uint8_t*>(buf.data() + i * k);
    }
    // Rows [pf_row, pf_row + kRows) as stored: n_lines cache lines, split evenly over the tiles.
    Prefetch pf{};
    const int64_t pf_row = r + kPrefetchAhead;
    const int64_t n_lines = pf_row + kRows <= m ? kRows * lines_per_row : 0;
    for (int i = 0; i < kRows && n_lines > 0; ++i) pf.rows[i] = w.row(pf_row + i);
    pf.lines_per_row = lines_per_row;
    const TileFn fn_full = buffered ? tile_fn<dequant::F32>(rr, kT) : tile_fn<D>(rr, kT);
    for (int64_t i = 0; i < n_tiles; ++i) {
      const int64_t t = i * kT;
      const int tt = int(std::min<int64_t>(kT, tn - t));
      pf.line = i * n_lines / n_tiles;
      pf.end = (i + 1) * n_lines / n_tiles;
      const TileFn fn = tt == kT ? fn_full : buffered ? tile_fn<dequant::F32>(rr, tt) : tile_fn<D>(rr, tt);
      fn(x + (t0 + t) * k, k, rows, y + (t0 + t) * m + r, m, pf);
    }
  }
}

using RowBlockFn = void (*)(const model::WeightMatrix&, float*, const float*, int64_t, int64_t, int64_t, int64_t,
                            int64_t);

RowBlockFn row_block_fn(io::GgmlType t) {
  using io::GgmlType;
  switch (t) {
    case GgmlType::F32: return row_block<dequant::F32>;
    case GgmlType::F16: return row_block<dequant::F16>;
    case GgmlType::BF16: return row_block<dequant::BF16>;
    case GgmlType::Q8_0: return row_block<dequant::Q8_0>;
    case GgmlType::Q4_0: return row_block<dequant::Q4_0>;
    case GgmlType::Q4_1: return row_block<dequant::Q4_1>;
    case GgmlType::Q5_0: return row_block<dequant::Q5_0>;
    case GgmlType::Q5_1: return row_block<dequant::Q5_1>;
    case GgmlType::Q2_K: return row_block<dequant::Q2_K>;
    case GgmlType::Q3_K: return row_block<dequant::Q3_K>;
    case GgmlType::Q4_K: return row_block<dequant::Q4_K>;
    case GgmlType::Q5_K: return row_block<dequant::Q5_K>;
    case GgmlType::Q6_K: return row_block<dequant::Q6_K>;
    default: runtime_error("matmul: weights of ggml type {} are not supported", io::ggml_type_name(t));
  }
}

}  // namespace

float dot(const float* a, const float* b, int64_t n) { return dot_inline(a, b, n); }

void matmul_many(const float* x, int64_t n, int64_t k, std::span<const MatmulOut> outs) {
  std::vector<RowBlockFn> fns;
  for (const MatmulOut& o : outs) {
    if (o.w->cols() != k) runtime_error("matmul: weight has {} columns, x has {}", o.w->cols(), k);
    fns.push_back(row_block_fn(o.w->type()));
  }
  // Work items: (product, block of kRowBlock rows), all products in one parallel region so a
  // layer's q/k/v (or gate/up) cost one fork and one barrier, not three.
  std::vector<std::pair<int, int64_t>> items;  // [n_items] (product, first row)
  for (size_t i = 0; i < outs.size(); ++i)
    for (int64_t r = 0; r < outs[i].w->rows(); r += kRowBlock) items.emplace_back(int(i), r);
  const int64_t n_items = int64_t(items.size());
  for (int64_t t0 = 0; t0 < n; t0 += kTokenChunk) {
    const int64_t tn = std::min(kTokenChunk, n - t0);
#pragma omp parallel for schedule(dynamic) if (n_items > 1)
    for (int64_t b = 0; b < n_items; ++b) {
      const size_t p = size_t(items[size_t(b)].first);
      const MatmulOut& o = outs[p];
      const int64_t r0 = items[size_t(b)].second;
      fns[p](*o.w, o.y, x, k, t0, tn, r0, std::min(o.w->rows(), r0 + kRowBlock));
    }
  }
}

void matmul(const float* x, int64_t n, int64_t k, const model::WeightMatrix& w, float* y) {
  const MatmulOut o{&w, y};
  matmul_many(x, n, k, std::span<const MatmulOut>(&o, 1));
}

void matmul(const float* x, int64_t n, int64_t k, const float* w, int64_t m, float* y) {
  const model::WeightMatrix wm =
      model::WeightMatrix::view(io::GgmlType::F32, m, k, reinterpret_cast<const uint8_t*>(w), nullptr);
  matmul(x, n, k, wm, y);
}

void add_bias(float* y, int64_t n, int64_t m, const float* bias) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < m; ++o) y[t * m + o] += bias[o];
}

}  // namespace kvaudit::engine::cpu
