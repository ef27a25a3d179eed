// A product of few rows (a decode step of a small batch) streamed at the memory's rate: d = x @ w.T
// over chunks of kc columns (lt_product.h's geometry), one warp per 16 (W_AS_A) or 8 output columns,
// the weights through shared memory many slabs ahead (by cp.async, by one-row bulk copies, or as 2D
// tiles of a tensor map), each output a single chain of mma.m16n8k16 over k in order (fp32 sums,
// k-steps of 16). cuBLASLt's kernels for a few rows leave SMs idle (an 8B's q/k/v: 80 blocks on 132
// SMs, 2.2 TB/s at batch 1; o_proj 128 blocks, 1.8 TB/s).
//
// It is only a CANDIDATE: lt_product runs it for a row count only when its product of a probe is the
// anchor's bit for bit (lt_product.h), so it never decides a bit itself. The two operand orders are
// two candidates: the same products and the same k-steps, W as the mma's A (16 columns a warp) or as
// its B (8 columns a warp, up to 16 rows of x). The tensor-tile kernel also has two forms that finish
// their own tiles: the gate/up product, its weights interleaved by 8, writing the activation
// (gemv_gated_bf16_cuda); and the q/k/v product, each tile two 8-row boxes of a head, writing q, k
// and v biased and rotated, and the caches' new rows (gemv_qkv_rope_bf16_cuda).
#include <cuda.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <span>
#include <tuple>

#include "engine/cuda/activation.cuh"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/pdl.cuh"
#include "engine/cuda/lt_product.h"
#include "engine/cuda/ops_cuda.h"
#include "engine/cuda/qkv_rope.cuh"

namespace kvaudit::engine::cuda {
namespace {

// A slab of SLAB_K k columns has rows SLAB_K + 8 bf16 apart: 144, 272 or 528 bytes, 16 bytes past a
// multiple of 128, so the 8 rows an ldmatrix reads fall in distinct banks.
template <int SLAB_K>
constexpr int slab_ld() {
  return SLAB_K + 8;
}

__device__ __forceinline__ void cp_async16(void* smem, const void* global) {
  const auto s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(global));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two consecutive bf16 of x's row r at column c (0 past the rows).
__device__ __forceinline__ uint32_t x_pair(const uint16_t* x, int64_t k, int rows, int r, int64_t c) {
  return r < rows ? __ldg(reinterpret_cast<const unsigned int*>(x + r * k + c)) : 0u;
}

// The W-as-A accumulator of columns i0 .. i0 + 15 into d's chunk db: c0, c1 are column i0 + g, rows
// 2t, 2t + 1; c2, c3 column i0 + g + 8 (columns past m and rows past `rows` not written).
__device__ __forceinline__ void store_w_as_a(const float (&acc)[4], float* db, int64_t i0, int g, int t, int64_t m,
                                             int rows, int64_t ld) {
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int64_t i = i0 + g + 8 * (e / 2);
    const int r = 2 * t + e % 2;
    if (i < m && r < rows) db[r * ld + i] = acc[e];
  }
}

// The gate/up product's tile (its weights interleaved by 8, lt_gated_cuda: columns 0-7 of tile i are
// gate's outputs 8i .. 8i + 7, columns 8-15 up's): c0, c1 are gate's output 8i + g at rows 2t, 2t + 1,
// c2, c3 up's, so act(gate) * up is this lane's, in bf16 at out [rows, d_ff] (gated_parts_cuda's
// formula, so its bits: the tests bind them).
struct GatedOut {
  uint16_t* out = nullptr;
  int64_t d_ff = 0;
  bool silu = true;
};
__device__ __forceinline__ void store_gated(const float (&acc)[4], const GatedOut& o, int64_t tile, int g, int t,
                                            int rows) {
  const int64_t j = tile * 8 + g;
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int r = 2 * t + e;
    if (j < o.d_ff && r < rows)
      o.out[r * o.d_ff + j] = __bfloat16_as_ushort(__float2bfloat16_rn(__fmul_rn(act_value(o.silu, acc[e]), acc[2 + e])));
  }
}

// Block (column tile, chunk b): one warp. W_AS_A: columns i0 .. i0 + 15 are the mma's rows, x's rows
// (<= 8) its n; else columns i0 .. i0 + 7 are its n and x's rows (<= 16) its rows.
template <bool W_AS_A, int SLAB_K, int STAGES>
__global__ void __launch_bounds__(32) gemv_kernel(const uint16_t* __restrict__ w, int64_t m, const uint16_t* __restrict__ x,
                                                  int rows, int64_t k, int64_t kc, float* __restrict__ d, int64_t ld,
                                                  int64_t stride) {
  constexpr int kCols = W_AS_A ? 16 : 8, kSlabK = SLAB_K, kSlabLd = slab_ld<SLAB_K>();
  extern __shared__ float4 smem4[];
  auto* slabs = reinterpret_cast<uint16_t*>(smem4);  // [STAGES][kCols][kSlabLd]
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  const int64_t i0 = int64_t(blockIdx.x) * kCols, b = blockIdx.y;
  const uint16_t* wb = w + b * kc;
  const uint16_t* xb = x + b * kc;
  const int64_t n_slabs = kc / kSlabK;
  // A slab: kCols rows of kSlabK columns = kCols * kSlabK / 8 pieces of 16 bytes, lane-strided (rows
  // past m read the last row: valid memory, results not written).
  constexpr int kPieces = kSlabK / 8;
  const auto issue = [&](int64_t s) {
    if (s < n_slabs) {
      uint16_t* dst = slabs + (s % STAGES) * (kCols * kSlabLd);
#pragma unroll
      for (int p = lane; p < kCols * kPieces; p += 32) {
        const int r = p / kPieces, c = (p % kPieces) * 8;
        const int64_t row = min(i0 + r, m - 1);
        cp_async16(dst + r * kSlabLd + c, wb + row * k + s * kSlabK + c);
      }
    }
    cp_commit();  // an empty group past the end keeps the wait count uniform
  };
  // The weights never change during a run, so the pipeline's first slabs are on their way before
  // the wait: launched early (PDL), this product streams while the kernel before it (a norm,
  // attention, the activation) finishes. Nothing else is read and nothing is written before it.
  for (int s = 0; s < STAGES - 1; ++s) issue(s);
  pdl_trigger();
  pdl_wait();
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int64_t s = 0; s < n_slabs; ++s) {
    cp_wait<STAGES - 2>();
    __syncwarp();
    const uint16_t* slab = slabs + (s % STAGES) * (kCols * kSlabLd);
    const int64_t c0 = s * kSlabK;
#pragma unroll
    for (int ks = 0; ks < kSlabK; ks += 16) {
      if constexpr (W_AS_A) {
        // Matrices 0-3: rows 0-7 / 8-15 at columns ks / ks + 8: a0..a3 of the A fragment.
        uint32_t a[4];
        const int mat = lane / 8;
        ldmatrix_x4(a, slab + ((mat % 2) * 8 + lane % 8) * kSlabLd + ks + (mat / 2) * 8);
        mma_bf16(acc, a, x_pair(xb, k, rows, g, c0 + ks + 2 * t), x_pair(xb, k, rows, g, c0 + ks + 8 + 2 * t));
      } else {
        // Matrices: rows 0-7 at columns ks, ks + 8, ks + 16, ks + 24: B fragments of two k-steps.
        if (ks % 32 != 0) continue;
        uint32_t bq[4];
        const int mat = lane / 8;
        ldmatrix_x4(bq, slab + (lane % 8) * kSlabLd + ks + mat * 8);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int64_t c = c0 + ks + 16 * h;
          const uint32_t a[4] = {x_pair(xb, k, rows, g, c + 2 * t), x_pair(xb, k, rows, g + 8, c + 2 * t),
                                 x_pair(xb, k, rows, g, c + 8 + 2 * t), x_pair(xb, k, rows, g + 8, c + 8 + 2 * t)};
          mma_bf16(acc, a, bq[2 * h], bq[2 * h + 1]);
        }
      }
    }
    __syncwarp();  // every lane has read the slab the next issue overwrites
    issue(s + STAGES - 1);
  }
  cp_wait<0>();
  float* db = d + b * stride;
  if constexpr (W_AS_A) {
    store_w_as_a(acc, db, i0, g, t, m, rows, ld);
  } else {  // c0, c1: row g, columns i0 + 2t, + 1; c2, c3: row g + 8
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t i = i0 + 2 * t + e % 2;
      const int r = g + 8 * (e / 2);
      if (i < m && r < rows) db[r * ld + i] = acc[e];
    }
  }
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void ldmatrix_x4_at(uint32_t (&r)[4], uint32_t a) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// The bulk copy engine (cp.async.bulk, Hopper): one instruction moves a row's slab into shared
// memory and signals an mbarrier with its bytes; the warp waits on the barrier's phase.
__device__ __forceinline__ void bar_init(uint32_t bar) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void bar_expect(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
}
__device__ __forceinline__ void bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}

// x's rows of chunk b into shared memory at x_s (x_at: the same place as a generic pointer), one bulk
// copy each, waited for: a k-step's pairs are then shared-memory loads, not L2 round trips in the
// mma's chain (ncu: the cp.async kernel's L1 hit rate was 8%, its warps' stalls mostly on x). Returns
// this lane's first pair: row min(g, rows - 1), column 2t.
__device__ __forceinline__ const uint32_t* x_rows_in_smem(uint32_t x_bar, uint32_t x_s, const unsigned char* x_at,
                                                          const uint16_t* x, int rows, int64_t k, int64_t kc, int64_t b,
                                                          int lane) {
  if (lane == 0) bar_expect(x_bar, uint32_t(rows * kc * 2));
  if (lane < rows) bulk_copy(x_s + uint32_t(lane * kc * 2), x + lane * k + b * kc, uint32_t(kc * 2), x_bar);
  bar_wait(x_bar, 0);
  return reinterpret_cast<const uint32_t*>(x_at) + min(lane / 4, rows - 1) * int(kc / 2) + lane % 4;
}

// gemv_kernel's W_AS_A product (the same mma chain, so the same bits: the test binds them) with the
// weights brought by the bulk copy engine and x's pairs read at constant offsets: the cp.async
// kernel spent ~50 instructions a k-step (per-piece 64-bit addressing, x's bounds) and, one warp a
// block and ~3 a SM, ran at the rate it issued them (ncu: 1.5 TB/s on an 8B's q/k/v at one row).
// Here a k-step is an ldmatrix, two loads and the mma; lane r < 16 copies row i0 + r of each slab.
template <int SLAB_K, int STAGES>
__global__ void __launch_bounds__(32) gemv_bulk_kernel(const uint16_t* __restrict__ w, int64_t m,
                                                       const uint16_t* __restrict__ x, int rows, int64_t k, int64_t kc,
                                                       float* __restrict__ d, int64_t ld, int64_t stride) {
  constexpr int kCols = 16, kSlabLd = slab_ld<SLAB_K>();
  constexpr uint32_t kRowBytes = SLAB_K * 2, kStageBytes = kCols * kSlabLd * 2;
  extern __shared__ float4 smem4[];  // [STAGES] slabs, then x's rows of this chunk
  __shared__ alignas(8) uint64_t bars[STAGES + 1];  // the slabs', x's
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  const int64_t i0 = int64_t(blockIdx.x) * kCols, b = blockIdx.y;
  const int n_slabs = int(kc / SLAB_K);
  const uint32_t slabs_s = smem_u32(smem4), bars_s = smem_u32(bars);
  if (lane == 0) {
    for (int s = 0; s <= STAGES; ++s) bar_init(bars_s + 8 * s);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncwarp();
  // Rows past m copy the last row (valid memory; their outputs are not written).
  const uint16_t* src = w + min(i0 + lane % kCols, m - 1) * k + b * kc;
  const auto issue = [&](int s) {
    if (s >= n_slabs) return;
    const uint32_t bar = bars_s + 8 * (s % STAGES);
    if (lane == 0) bar_expect(bar, kCols * kRowBytes);
    if (lane < kCols) bulk_copy(slabs_s + (s % STAGES) * kStageBytes + lane * kSlabLd * 2, src + int64_t(s) * SLAB_K,
                                kRowBytes, bar);
  };
  // The weights never change during a run: the first slabs are on their way before the wait (as
  // gemv_kernel's); x, written by the kernel before, is read after it.
  for (int s = 0; s < STAGES - 1; ++s) issue(s);
  pdl_trigger();
  pdl_wait();
  const uint32_t x_mask = g < rows ? 0xffffffffu : 0u;  // x's rows past `rows` are zeros
  const uint32_t* xl = x_rows_in_smem(bars_s + 8 * STAGES, slabs_s + STAGES * kStageBytes,
                                      reinterpret_cast<const unsigned char*>(smem4) + STAGES * kStageBytes, x, rows, k,
                                      kc, b, lane);
  const int mat = lane / 8;
  const uint32_t a_off = uint32_t(((mat % 2) * 8 + lane % 8) * kSlabLd + (mat / 2) * 8) * 2;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int s = 0; s < n_slabs; ++s) {
    bar_wait(bars_s + 8 * (s % STAGES), uint32_t(s / STAGES) & 1u);
    const uint32_t slab = slabs_s + (s % STAGES) * kStageBytes + a_off;
    const uint32_t* xs = xl + s * (SLAB_K / 2);
#pragma unroll
    for (int ks = 0; ks < SLAB_K; ks += 16) {
      uint32_t a[4];
      ldmatrix_x4_at(a, slab + ks * 2);
      mma_bf16(acc, a, xs[ks / 2] & x_mask, xs[ks / 2 + 4] & x_mask);
    }
    __syncwarp();  // every lane has read the slab the next copy overwrites
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    issue(s + STAGES - 1);
  }
  store_w_as_a(acc, d + b * stride, i0, g, t, m, rows, ld);
}

__device__ __forceinline__ void tensor_tile(uint32_t dst, const CUtensorMap* map, int col, int row, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(col), "r"(row), "r"(bar)
      : "memory");
}

// Tiles of the tensor-map kernel: 16 rows x 64 columns (128 bytes a row, the widest the 128B swizzle
// takes), four a slab of 256 columns.
constexpr int kTileK = 64, kTilesPerSlab = 4, kTensorSlabK = kTileK * kTilesPerSlab;
constexpr uint32_t kTileBytes = 16 * kTileK * 2, kTensorStageBytes = kTilesPerSlab * kTileBytes;

// The tensor-tile kernels' pieces (one warp; bars: STAGES slab barriers, then x's).
template <int STAGES>
__device__ __forceinline__ void tensor_start(uint32_t bars_s, const CUtensorMap* map, int lane) {
  if (lane == 0) {
    for (int s = 0; s <= STAGES; ++s) bar_init(bars_s + 8 * s);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
  }
  __syncwarp();
}
// Slab columns col .. col + 255 of rows i0 .. i0 + 15 into dst, on barrier bar (lane 0 issues).
// PAIRED (a map of 8-row boxes): rows r0 .. r0 + 7 as the tiles' rows 0-7 and r1 .. r1 + 7 as rows
// 8-15. The swizzle is a function of the shared address, 8 rows of 128 bytes a period, so the
// second box lands as the second half of a 16-row box would: the mma chain reads the same layout.
template <bool PAIRED = false>
__device__ __forceinline__ void tensor_slab(const CUtensorMap* map, uint32_t dst, uint32_t bar, int col, int r0,
                                            int r1 = 0) {
  bar_expect(bar, kTensorStageBytes);
#pragma unroll
  for (int q = 0; q < kTilesPerSlab; ++q) {
    tensor_tile(dst + q * kTileBytes, map, col + q * kTileK, r0, bar);
    if constexpr (PAIRED) tensor_tile(dst + q * kTileBytes + kTileBytes / 2, map, col + q * kTileK, r1, bar);
  }
}
// One slab's 16 k-steps into acc: slab is this lane's row of the stage (row * 128 in), xs the
// slab's first pair of x in shared memory.
__device__ __forceinline__ void tensor_slab_mmas(float (&acc)[4], uint32_t slab, const uint32_t* xs, uint32_t x_mask,
                                                 int mat, int swz) {
#pragma unroll
  for (int q = 0; q < kTilesPerSlab; ++q)
#pragma unroll
    for (int kk = 0; kk < kTileK / 16; ++kk) {
      uint32_t a[4];
      ldmatrix_x4_at(a, slab + q * kTileBytes + (uint32_t((2 * kk + mat / 2) ^ swz) << 4));
      const int ks = q * kTileK + kk * 16;
      mma_bf16(acc, a, xs[ks / 2] & x_mask, xs[ks / 2 + 4] & x_mask);
    }
}

// What the tensor-tile kernel does with its tiles: writes them to d, or (one chunk) applies the
// gated activation (store_gated), or splits, biases, rotates and stores q|k|v (qkv_rope.cuh).
enum class Tail { kPlain, kGated, kQkvRope };

// gemv_bulk_kernel's product (the same mma chain: the same bits, the test binds them) with the
// weights brought as 2D tiles of a tensor map: one request moves 16 rows x 64 columns where the bulk
// kernel needs 16 one-row copies (issued one lane at a time through the uniform datapath), and the
// 128B swizzle (16-byte piece c of row r at piece c ^ (r % 8)) keeps the ldmatrix reads
// conflict-free without padding. Rows past m arrive as zeros (their outputs are not written).
// kQkvRope: tile i of a head holds channels 8i .. 8i + 7 and half + 8i .. half + 8i + 7 (two 8-row
// boxes), so each rotated pair is one lane's; a pair's bias, cos/sin and cache row are loaded before
// the wait.
template <int STAGES, Tail TAIL>
__global__ void __launch_bounds__(32) gemv_tensor_kernel(const __grid_constant__ CUtensorMap wmap, int64_t m,
                                                         const uint16_t* __restrict__ x, int rows, int64_t k, int64_t kc,
                                                         float* __restrict__ d, int64_t ld, int64_t stride,
                                                         GatedOut gated, QkvRope qkv) {
  extern __shared__ float4 smem4[];  // 1 KB of slack, [STAGES] slabs at the swizzle's 1 KB alignment, x's rows
  __shared__ alignas(8) uint64_t bars[STAGES + 1];  // the slabs', x's
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  constexpr bool kPaired = TAIL == Tail::kQkvRope;
  const int i0 = int(blockIdx.x) * 16, b = int(blockIdx.y);
  // kPaired: head h's tile i (its channels u0 + 0..7 and half + u0 + 0..7) at rows r0 and r1
  const int h = kPaired ? int(blockIdx.x) / (qkv.head_dim / 16) : 0;
  const int u0 = kPaired ? int(blockIdx.x) % (qkv.head_dim / 16) * 8 : 0;
  const int r0 = kPaired ? h * qkv.head_dim + u0 : i0, r1 = r0 + qkv.half;
  const int n_slabs = int(kc / kTensorSlabK);
  const uint32_t slabs_s = (smem_u32(smem4) + 1023u) & ~1023u, bars_s = smem_u32(bars);
  tensor_start<STAGES>(bars_s, &wmap, lane);
  const auto issue = [&](int s) {
    if (s < n_slabs && lane == 0)
      tensor_slab<kPaired>(&wmap, slabs_s + (s % STAGES) * kTensorStageBytes, bars_s + 8 * (s % STAGES),
                           int(b * kc) + s * kTensorSlabK, r0, r1);
  };
  // The weights never change during a run: the first slabs are on their way before the wait.
  for (int s = 0; s < STAGES - 1; ++s) issue(s);
  pdl_trigger();
  // kPaired, rows <= 2: lane g (t = 0) holds channels u0 + g and half + u0 + g of rows 0 and 1. What
  // the pairs need is the biases and the call's tables (cos/sin, rows, caches), which no kernel of a
  // step writes (they go up by a synchronous copy before it): read before the wait, their dependent
  // loads off the chain.
  QkvPair pairs[2];
  if constexpr (kPaired)
    if (t == 0)
#pragma unroll
      for (int r = 0; r < 2; ++r)
        if (r < rows) pairs[r] = qkv_pair(qkv, r, h, u0 + g, qkv.half + u0 + g, h < qkv.n_heads + qkv.n_kv_heads);
  pdl_wait();
  TlMarks marks;
  const uint32_t x_s = slabs_s + STAGES * kTensorStageBytes;
  const uint32_t x_mask = g < rows ? 0xffffffffu : 0u;  // x's rows past `rows` are zeros
  const uint32_t* xl = x_rows_in_smem(bars_s + 8 * STAGES, x_s,
                                      reinterpret_cast<const unsigned char*>(smem4) + (x_s - smem_u32(smem4)), x, rows,
                                      k, kc, b, lane);
  marks.mark();
  // ldmatrix.x4's matrices: rows 0-7 / 8-15 (mat % 2) at the k-step's first / second 8 columns (mat / 2).
  const int mat = lane / 8, row = (mat % 2) * 8 + lane % 8, swz = lane % 8;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int s = 0; s < n_slabs; ++s) {
    bar_wait(bars_s + 8 * (s % STAGES), uint32_t(s / STAGES) & 1u);
    tensor_slab_mmas(acc, slabs_s + (s % STAGES) * kTensorStageBytes + row * 128, xl + s * (kTensorSlabK / 2), x_mask,
                     mat, swz);
    __syncwarp();  // every lane has read the slab the next copy overwrites
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    issue(s + STAGES - 1);
  }
  marks.mark();
  if constexpr (TAIL == Tail::kGated) {
    store_gated(acc, gated, blockIdx.x, g, t, rows);
  } else if constexpr (TAIL == Tail::kQkvRope) {
    if (t == 0)
#pragma unroll
      for (int r = 0; r < 2; ++r)
        if (r < rows) qkv_pair_put(pairs[r], acc[r], acc[2 + r]);
  } else {
    store_w_as_a(acc, d + b * stride, i0, g, t, m, rows, ld);
  }
  marks.mark();
  marks.flush();
}

// w [m, k] as a tensor map of 16 x 64 tiles, made once per weight (the driver's encoder, reached
// through the runtime: no link to libcuda). Returned by value: the kernel takes it by value, and a
// reference into the cache would outlive the lock.
using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
CUtensorMap weight_map(const uint16_t* w, int64_t m, int64_t k, int box_rows = 16) {
  static const EncodeTiled encode = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    KVAUDIT_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q));
    if (q != cudaDriverEntryPointSuccess || f == nullptr) throw_runtime("CUDA: the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<EncodeTiled>(f);
  }();
  static std::mutex mu;
  static std::map<std::tuple<const void*, int64_t, int64_t, int>, CUtensorMap> maps;
  const std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(static_cast<const void*>(w), m, k, box_rows);
  auto it = maps.find(key);
  if (it != maps.end()) return it->second;
  if (maps.size() >= 4096) maps.clear();
  CUtensorMap map{};
  const cuuint64_t dims[2] = {cuuint64_t(k), cuuint64_t(m)}, strides[1] = {cuuint64_t(k) * 2};
  const cuuint32_t box[2] = {cuuint32_t(kTileK), cuuint32_t(box_rows)}, elem[2] = {1, 1};
  const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<uint16_t*>(w), dims, strides, box, elem,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) throw_runtime("CUDA: cuTensorMapEncodeTiled failed for a weight of " + std::to_string(m) + " x " + std::to_string(k));
  return maps.emplace(key, map).first->second;
}

template <int STAGES, Tail TAIL = Tail::kPlain>
void launch_tensor(const uint16_t* w, int64_t m, const uint16_t* x, int64_t rows, int64_t k, int64_t kc, int batch,
                   float* d, int64_t ld, int64_t stride, GatedOut gated = {}, const QkvRope& qkv = {}) {
  const size_t smem = 1024 + size_t(STAGES) * kTensorStageBytes + size_t(rows * kc * 2);
  static size_t opened = 0;
  if (smem > opened) {
    KVAUDIT_CUDA_CHECK(cudaFuncSetAttribute(gemv_tensor_kernel<STAGES, TAIL>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    opened = smem;
  }
  const dim3 grid(unsigned((m + 15) / 16), unsigned(batch));
  launch_pdl(gemv_tensor_kernel<STAGES, TAIL>, grid, 32, smem, weight_map(w, m, k, TAIL == Tail::kQkvRope ? 8 : 16), m,
             x, int(rows), k, kc, d, ld, stride, gated, qkv);
}

template <int SLAB_K, int STAGES>
void launch_bulk(const uint16_t* w, int64_t m, const uint16_t* x, int64_t rows, int64_t k, int64_t kc, int batch,
                 float* d, int64_t ld, int64_t stride) {
  const size_t smem = size_t(STAGES) * 16 * slab_ld<SLAB_K>() * 2 + size_t(rows * kc * 2);
  static size_t opened = 0;
  if (smem > opened) {
    KVAUDIT_CUDA_CHECK(
        cudaFuncSetAttribute(gemv_bulk_kernel<SLAB_K, STAGES>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    opened = smem;
  }
  const dim3 grid(unsigned((m + 15) / 16), unsigned(batch));
  launch_pdl(gemv_bulk_kernel<SLAB_K, STAGES>, grid, 32, smem, w, m, x, int(rows), k, kc, d, ld, stride);
}

template <bool W_AS_A, int SLAB_K, int STAGES>
void launch(const uint16_t* w, int64_t m, const uint16_t* x, int64_t rows, int64_t k, int64_t kc, int batch, float* d,
            int64_t ld, int64_t stride) {
  constexpr int kCols = W_AS_A ? 16 : 8;
  const size_t smem = size_t(STAGES) * kCols * slab_ld<SLAB_K>() * 2;
  static bool opened = false;
  if (!opened) {
    KVAUDIT_CUDA_CHECK(cudaFuncSetAttribute(gemv_kernel<W_AS_A, SLAB_K, STAGES>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    opened = true;
  }
  const dim3 grid(unsigned((m + kCols - 1) / kCols), unsigned(batch));
  launch_pdl(gemv_kernel<W_AS_A, SLAB_K, STAGES>, grid, 32, smem, w, m, x, int(rows), k, kc, d, ld, stride);
}

// The variants, each a row of gemv_kernels(): slabs of 2-16 KB a warp, 14-80 KB in flight. On an H100
// (docs/PERFORMANCE.md, 8B shapes at 1 row, timed after a lead as in a step) the tensor-tile kernels
// beat cuBLASLt at every shape (q/k/v 21 against 27 us, o_proj 14 against 19, gate/up 84 against 92,
// down 46 against 52, lm_head 343 against 356); the cp.async ones lose everywhere but lm_head.
using Launch = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, int64_t, int, float*, int64_t,
                        int64_t);
struct Variant {
  GemvKernel kernel;
  Launch run;
};
using TensorLaunch = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, int64_t, int, float*, int64_t,
                              int64_t, GatedOut, const QkvRope&);
template <TensorLaunch L>
void plain(const uint16_t* w, int64_t m, const uint16_t* x, int64_t rows, int64_t k, int64_t kc, int batch, float* d,
           int64_t ld, int64_t stride) {
  L(w, m, x, rows, k, kc, batch, d, ld, stride, GatedOut{}, QkvRope{});
}
constexpr Variant kVariants[] = {
    {{GemvOrder::kWeightsAsB, 64, 16}, launch<false, 64, 16>},  {{GemvOrder::kWeightsAsA, 64, 8}, launch<true, 64, 8>},
    {{GemvOrder::kWeightsAsB, 128, 16}, launch<false, 128, 16>}, {{GemvOrder::kWeightsAsA, 128, 8}, launch<true, 128, 8>},
    {{GemvOrder::kWeightsAsA, 128, 12}, launch<true, 128, 12>}, {{GemvOrder::kWeightsAsB, 256, 8}, launch<false, 256, 8>},
    {{GemvOrder::kWeightsAsA, 256, 4}, launch<true, 256, 4>},   {{GemvOrder::kWeightsAsA, 256, 6}, launch<true, 256, 6>},
    {{GemvOrder::kWeightsAsA, 128, 8, true}, launch_bulk<128, 8>}, {{GemvOrder::kWeightsAsA, 256, 4, true}, launch_bulk<256, 4>},
    {{GemvOrder::kWeightsAsA, 256, 6, true}, launch_bulk<256, 6>}, {{GemvOrder::kWeightsAsA, 512, 3, true}, launch_bulk<512, 3>},
    {{GemvOrder::kWeightsAsA, 512, 4, true}, launch_bulk<512, 4>},
    {{GemvOrder::kWeightsAsA, kTensorSlabK, 4, false, true}, plain<launch_tensor<4>>},
    {{GemvOrder::kWeightsAsA, kTensorSlabK, 6, false, true}, plain<launch_tensor<6>>},
    {{GemvOrder::kWeightsAsA, kTensorSlabK, 10, false, true}, plain<launch_tensor<10>>},
};
constexpr auto kKernels = [] {
  std::array<GemvKernel, std::size(kVariants)> kernels{};
  for (size_t i = 0; i < kernels.size(); ++i) kernels[i] = kVariants[i].kernel;
  return kernels;
}();

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}

// One warp that lets the next launch be scheduled at once and then spins for ns nanoseconds.
__global__ void lead_kernel(uint64_t ns) {
  pdl_trigger();
  const uint64_t t0 = global_ns();
  while (global_ns() - t0 < ns) {
  }
}

}  // namespace

void lead_cuda(double us) { launch_pdl(lead_kernel, dim3(1), dim3(32), 0, uint64_t(us * 1000.0)); }

std::span<const GemvKernel> gemv_kernels() { return kKernels; }

bool gemv_fits(const GemvKernel& kernel, int64_t rows, int64_t k, int64_t kc) {
  // The bulk and tensor kernels hold x's rows of a chunk in shared memory: one or two rows of up to
  // 8,192 columns; the tensor map's coordinates are 32-bit.
  const bool x_in_smem = kernel.bulk || kernel.tensor;
  const int64_t most = x_in_smem ? 2 : kernel.order == GemvOrder::kWeightsAsA ? 8 : 16;
  return rows >= 1 && rows <= most && kc % kernel.slab_k == 0 && kc >= kernel.slab_k && k % 8 == 0 &&
         (!x_in_smem || kc <= 8192) && (!kernel.tensor || k < (int64_t(1) << 31));
}

void gemv_bf16_cuda(const GemvKernel& kernel, const void* w, int64_t m, const void* x, int64_t rows, int64_t k,
                    int64_t kc, int batch, float* d, int64_t ld, int64_t stride) {
  for (const Variant& v : kVariants)
    if (v.kernel == kernel) {
      v.run(static_cast<const uint16_t*>(w), m, static_cast<const uint16_t*>(x), rows, k, kc, batch, d, ld, stride);
      return;
    }
  throw_runtime("gemv_bf16_cuda: no streaming kernel of this variant");
}

bool gemv_gated_fits(const GemvKernel& kernel, int64_t rows, int64_t k, int64_t d_ff) {
  return kernel.tensor && d_ff % 8 == 0 && gemv_fits(kernel, rows, k, k);
}

void gemv_gated_bf16_cuda(const GemvKernel& kernel, const void* w, const void* x, int64_t rows, int64_t k, int64_t d_ff,
                          bool silu, uint16_t* out) {
  if (!gemv_gated_fits(kernel, rows, k, d_ff)) throw_runtime("gemv_gated_bf16_cuda: not a tensor-tile kernel's geometry");
  const auto* wb = static_cast<const uint16_t*>(w);
  const auto* xb = static_cast<const uint16_t*>(x);
  const GatedOut o{out, d_ff, silu};
  const int64_t m = 2 * d_ff;
  const auto run = [&](TensorLaunch l) { l(wb, m, xb, rows, k, k, 1, nullptr, m, 0, o, QkvRope{}); };
  switch (kernel.stages) {
    case 4: return run(launch_tensor<4, Tail::kGated>);
    case 6: return run(launch_tensor<6, Tail::kGated>);
    case 10: return run(launch_tensor<10, Tail::kGated>);
    default: throw_runtime("gemv_gated_bf16_cuda: no gated kernel of this variant");
  }
}

bool gemv_qkv_rope_fits(const GemvKernel& kernel, int64_t rows, int64_t k, const QkvRope& o) {
  return kernel.tensor && o.head_dim % 16 == 0 && o.head_dim == 2 * o.half && gemv_fits(kernel, rows, k, k);
}

void gemv_qkv_rope_bf16_cuda(const GemvKernel& kernel, const void* w, const void* x, int64_t rows, int64_t k,
                             const QkvRope& o) {
  if (!gemv_qkv_rope_fits(kernel, rows, k, o)) throw_runtime("gemv_qkv_rope_bf16_cuda: not a tensor-tile kernel's geometry");
  const auto* wb = static_cast<const uint16_t*>(w);
  const auto* xb = static_cast<const uint16_t*>(x);
  const int64_t m = int64_t(o.n_heads + 2 * o.n_kv_heads) * o.head_dim;
  const auto run = [&](TensorLaunch l) { l(wb, m, xb, rows, k, k, 1, nullptr, m, 0, GatedOut{}, o); };
  switch (kernel.stages) {
    case 4: return run(launch_tensor<4, Tail::kQkvRope>);
    case 6: return run(launch_tensor<6, Tail::kQkvRope>);
    case 10: return run(launch_tensor<10, Tail::kQkvRope>);
    default: throw_runtime("gemv_qkv_rope_bf16_cuda: no q/k/v kernel of this variant");
  }
}

}  // namespace kvaudit::engine::cuda
