// A product of few rows (a decode step of a small batch) streamed at the memory's rate: d = x @ w.T
// over chunks of kc columns (lt_product.h's geometry), one warp per 16 (W_AS_A) or 8 output columns,
// the weights through shared memory by cp.async many slabs ahead, each output a single chain of
// mma.m16n8k16 over k in order (fp32 sums, k-steps of 16). cuBLASLt's kernels for a few rows leave
// most SMs idle (an 8B's q/k/v: 96 tiles of 64 columns on 132 SMs, 2.6 TB/s at batch 1).
//
// It is only a CANDIDATE: lt_product runs it for a row count only when its product of a probe is the
// anchor's bit for bit (lt_product.h), so it never decides a bit itself. The two operand orders are
// two candidates: the same products and the same k-steps, W as the mma's A (16 columns a warp) or as
// its B (8 columns a warp, up to 16 rows of x).
#include <cuda_bf16.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <span>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/pdl.cuh"
#include "engine/cuda/lt_product.h"

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

// Block (column tile, chunk b): one warp. W_AS_A: columns i0 .. i0 + 15 are the mma's rows, x's rows
// (<= 8) its n; else columns i0 .. i0 + 7 are its n and x's rows (<= 16) its rows.
template <bool W_AS_A, int SLAB_K, int STAGES>
__global__ void __launch_bounds__(32) gemv_kernel(const uint16_t* __restrict__ w, int64_t m, const uint16_t* __restrict__ x,
                                                  int rows, int64_t k, int64_t kc, float* __restrict__ d, int64_t ld,
                                                  int64_t stride) {
  pdl_wait();
  pdl_trigger();
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
  for (int s = 0; s < STAGES - 1; ++s) issue(s);
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
  if constexpr (W_AS_A) {  // c0, c1: column i0 + g, rows 2t, 2t + 1; c2, c3: column i0 + g + 8
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t i = i0 + g + 8 * (e / 2);
      const int r = 2 * t + e % 2;
      if (i < m && r < rows) db[r * ld + i] = acc[e];
    }
  } else {  // c0, c1: row g, columns i0 + 2t, + 1; c2, c3: row g + 8
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t i = i0 + 2 * t + e % 2;
      const int r = g + 8 * (e / 2);
      if (i < m && r < rows) db[r * ld + i] = acc[e];
    }
  }
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

// The variants, each a row of gemv_kernels(): slabs of 2-8 KB a warp, 14-50 KB in flight. On an H100
// (docs/PERFORMANCE.md, 8B shapes at 1 row, weights out of L2) cuBLASLt stays faster at every shape
// but lm_head, where the wider slabs win (371-375 us against 390 for slabs of 64 and 394 for cuBLASLt).
using Launch = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, int64_t, int, float*, int64_t,
                        int64_t);
struct Variant {
  GemvKernel kernel;
  Launch run;
};
constexpr Variant kVariants[] = {
    {{GemvOrder::kWeightsAsB, 64, 16}, launch<false, 64, 16>},  {{GemvOrder::kWeightsAsA, 64, 8}, launch<true, 64, 8>},
    {{GemvOrder::kWeightsAsB, 128, 16}, launch<false, 128, 16>}, {{GemvOrder::kWeightsAsA, 128, 8}, launch<true, 128, 8>},
    {{GemvOrder::kWeightsAsA, 128, 12}, launch<true, 128, 12>}, {{GemvOrder::kWeightsAsB, 256, 8}, launch<false, 256, 8>},
    {{GemvOrder::kWeightsAsA, 256, 4}, launch<true, 256, 4>},   {{GemvOrder::kWeightsAsA, 256, 6}, launch<true, 256, 6>},
};
constexpr auto kKernels = [] {
  std::array<GemvKernel, std::size(kVariants)> kernels{};
  for (size_t i = 0; i < kernels.size(); ++i) kernels[i] = kVariants[i].kernel;
  return kernels;
}();

}  // namespace

std::span<const GemvKernel> gemv_kernels() { return kKernels; }

bool gemv_fits(const GemvKernel& kernel, int64_t rows, int64_t k, int64_t kc) {
  const int64_t most = kernel.order == GemvOrder::kWeightsAsA ? 8 : 16;
  return rows >= 1 && rows <= most && kc % kernel.slab_k == 0 && kc >= kernel.slab_k && k % 8 == 0;
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

}  // namespace kvaudit::engine::cuda
