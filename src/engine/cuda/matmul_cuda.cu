// y = x @ w.T on the device (ops_cuda.h), a shared-memory tiled kernel with one fixed reduction
// order that depends on k alone (batch invariance): k is cut into kchunks(k) chunks of kchunk_len(k)
// columns; each chunk's partial sum is one fmaf chain from 0 over its columns in order, and the
// partials are added left to right. The split is the same for 1 row or 4,096, so tiling and the
// number of rows change which thread computes an output, never its bits; the split only exists so
// that a decode step (few rows) still has enough blocks and short enough chains to fill the GPU.
// Tiles: BM rows of x by 64 rows of w, k in steps of 16; 256 threads, each TM = BM/16 rows by 4
// columns (rows ty + 16*i, columns tx + 16*j, so shared-memory reads of a warp are conflict-free).
#include <cuda_bf16.h>

#include <algorithm>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kBN = 64, kBK = 16, kThreads = 256;
constexpr int64_t kMaxChunks = 8;       // partial sums per output
constexpr int64_t kMinChunkLen = 256;   // columns per chunk at least (short k: fewer chunks)
// Scratch for the partial sums is bounded by running rows in passes (rows never interact).
constexpr int64_t kMaxPartialFloats = int64_t(64) << 20;

int64_t kchunks(int64_t k) { return std::min(kMaxChunks, (k + kMinChunkLen - 1) / kMinChunkLen); }
// Columns per chunk, a multiple of the k tile (the last chunk may be shorter).
int64_t kchunk_len(int64_t k) {
  const int64_t c = kchunks(k);
  return ((k + c - 1) / c + kBK - 1) / kBK * kBK;
}

__device__ inline float load_w(const float* w, int64_t i) { return w[i]; }
__device__ inline float load_w(const __nv_bfloat16* w, int64_t i) { return __bfloat162float(w[i]); }

// Chunk blockIdx.z of y's partial sums: y + blockIdx.z * n * m, columns [z*len, min(k, (z+1)*len)).
template <int BM, typename W>
__global__ void __launch_bounds__(kThreads) matmul_kernel(const float* __restrict__ x, int64_t n, int64_t k,
                                                          const W* __restrict__ w, int64_t m, int64_t chunk_len,
                                                          float* __restrict__ y) {
  constexpr int TM = BM / 16;
  __shared__ float xs[kBK][BM + 1];   // [k in tile][row]
  __shared__ float ws[kBK][kBN + 1];  // [k in tile][column]
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t row0 = int64_t(blockIdx.y) * BM, col0 = int64_t(blockIdx.x) * kBN;
  float acc[TM][4] = {};
  const int64_t k_begin = int64_t(blockIdx.z) * chunk_len, k_end = min(k, k_begin + chunk_len);
  y += int64_t(blockIdx.z) * n * m;
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kBK) {
    // Zero-fill past the edges: fmaf(0, 0, acc) == acc, so padding never changes a value.
    for (int e = tid; e < BM * kBK; e += kThreads) {
      const int r = e / kBK, c = e % kBK;
      const int64_t gr = row0 + r, gc = k0 + c;
      xs[c][r] = (gr < n && gc < k_end) ? x[gr * k + gc] : 0.0f;
    }
    for (int e = tid; e < kBN * kBK; e += kThreads) {
      const int r = e / kBK, c = e % kBK;
      const int64_t gr = col0 + r, gc = k0 + c;
      ws[c][r] = (gr < m && gc < k_end) ? load_w(w, gr * k + gc) : 0.0f;
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

// y[i] = ((p[0][i] + p[1][i]) + p[2][i]) + ...   (the chunks' partial sums, in order)
__global__ void sum_chunks_kernel(const float* __restrict__ p, int64_t chunks, int64_t size, float* __restrict__ y) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= size) return;
  float s = p[i];
  for (int64_t c = 1; c < chunks; ++c) s = __fadd_rn(s, p[c * size + i]);
  y[i] = s;
}

template <int BM, typename W>
void launch(const float* x, int64_t n, int64_t k, const W* w, int64_t m, float* out) {
  const int64_t chunks = kchunks(k);
  const dim3 grid(unsigned((m + kBN - 1) / kBN), unsigned((n + BM - 1) / BM), unsigned(chunks));
  matmul_kernel<BM, W><<<grid, kThreads>>>(x, n, k, w, m, kchunk_len(k), out);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

template <typename W>
void dispatch(const float* x, int64_t n, int64_t k, const W* w, int64_t m, float* y) {
  static DeviceBuffer<float> partials;  // [chunks, rows of a pass, m]
  const int64_t chunks = kchunks(k);
  // Rows per pass: as many as the scratch bound allows (at least one 64-row tile).
  const int64_t pass = chunks == 1 ? n : std::max<int64_t>(64, kMaxPartialFloats / (chunks * m));
  for (int64_t r0 = 0; r0 < n; r0 += pass) {
    const int64_t rows = std::min(pass, n - r0);
    float* out = y + r0 * m;
    if (chunks > 1) {
      partials.resize(size_t(chunks * rows * m));
      out = partials.data();
    }
    // Few rows (decode): 16-row tiles waste less work; the values are the same either way.
    if (rows <= 16)
      launch<16>(x + r0 * k, rows, k, w, m, out);
    else
      launch<64>(x + r0 * k, rows, k, w, m, out);
    if (chunks > 1) {
      const int64_t size = rows * m;
      sum_chunks_kernel<<<unsigned((size + kThreads - 1) / kThreads), kThreads>>>(partials.data(), chunks, size, y + r0 * m);
      KVAUDIT_CUDA_CHECK(cudaGetLastError());
    }
  }
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
