// y = x @ w.T on the device (ops_cuda.h), a shared-memory tiled kernel with one fixed reduction
// order: each output is one fmaf chain over c = 0..k-1, so tiling and the number of rows change
// which thread computes it, never its bits (batch invariance; no split-K).
// Tiles: BM rows of x by 64 rows of w, k in steps of 16; 256 threads, each TM = BM/16 rows by 4
// columns (rows ty + 16*i, columns tx + 16*j, so shared-memory reads of a warp are conflict-free).
#include <cuda_bf16.h>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kBN = 64, kBK = 16, kThreads = 256;

__device__ inline float load_w(const float* w, int64_t i) { return w[i]; }
__device__ inline float load_w(const __nv_bfloat16* w, int64_t i) { return __bfloat162float(w[i]); }

template <int BM, typename W>
__global__ void __launch_bounds__(kThreads) matmul_kernel(const float* __restrict__ x, int64_t n, int64_t k,
                                                          const W* __restrict__ w, int64_t m, float* __restrict__ y) {
  constexpr int TM = BM / 16;
  __shared__ float xs[kBK][BM + 1];   // [k in tile][row]
  __shared__ float ws[kBK][kBN + 1];  // [k in tile][column]
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t row0 = int64_t(blockIdx.y) * BM, col0 = int64_t(blockIdx.x) * kBN;
  float acc[TM][4] = {};
  for (int64_t k0 = 0; k0 < k; k0 += kBK) {
    // Zero-fill past the edges: fmaf(0, 0, acc) == acc, so padding never changes a value.
    for (int e = tid; e < BM * kBK; e += kThreads) {
      const int r = e / kBK, c = e % kBK;
      const int64_t gr = row0 + r, gc = k0 + c;
      xs[c][r] = (gr < n && gc < k) ? x[gr * k + gc] : 0.0f;
    }
    for (int e = tid; e < kBN * kBK; e += kThreads) {
      const int r = e / kBK, c = e % kBK;
      const int64_t gr = col0 + r, gc = k0 + c;
      ws[c][r] = (gr < m && gc < k) ? load_w(w, gr * k + gc) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float a[TM], b[4];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = xs[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = ws[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t r = row0 + ty + 16 * i;
    if (r >= n) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t c = col0 + tx + 16 * j;
      if (c < m) y[r * m + c] = acc[i][j];
    }
  }
}

template <int BM, typename W>
void launch(const float* x, int64_t n, int64_t k, const W* w, int64_t m, float* y) {
  const dim3 grid(unsigned((m + kBN - 1) / kBN), unsigned((n + BM - 1) / BM));
  matmul_kernel<BM, W><<<grid, kThreads>>>(x, n, k, w, m, y);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

template <typename W>
void dispatch(const float* x, int64_t n, int64_t k, const W* w, int64_t m, float* y) {
  // Few rows (decode): 16-row tiles waste less work; the values are the same either way.
  if (n <= 16)
    launch<16>(x, n, k, w, m, y);
  else
    launch<64>(x, n, k, w, m, y);
}

}  // namespace

void matmul_cuda(const float* x, int64_t n, int64_t k, const void* w, WeightType wt, int64_t m, float* y) {
  if (n == 0 || m == 0) return;
  if (wt == WeightType::kF32)
    dispatch(x, n, k, static_cast<const float*>(w), m, y);
  else
    dispatch(x, n, k, static_cast<const __nv_bfloat16*>(w), m, y);
}

}  // namespace kvaudit::engine::cuda
