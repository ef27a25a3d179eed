// Greedy decoding's argmax on the device (ops_cuda.h argmax_rows_cuda): one block per row, each
// thread the best of a strided slice, then a tree; the larger value wins, the smaller index on a
// tie, so the result is engine::argmax's whatever the order of the comparisons (NaN as it treats
// it: never taken, except at index 0, where it stays).
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 256;

__device__ bool better(float v, int64_t i, float bv, int64_t bi) { return v > bv || (v == bv && i < bi); }

__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* __restrict__ x, int64_t n, int* __restrict__ out) {
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
  const float* row = x + int64_t(blockIdx.x) * n;
  float bv = -INFINITY;
  int64_t bi = n;  // none yet
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const float v = row[i];
    if (v == v && (bi == n || better(v, i, bv, bi))) bv = v, bi = i;  // NaN never taken
  }
  sv[threadIdx.x] = bv;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    const int t = threadIdx.x;
    if (t < s && si[t + s] < n && (si[t] == n || better(sv[t + s], si[t + s], sv[t], si[t]))) {
      sv[t] = sv[t + s];
      si[t] = si[t + s];
    }
    __syncthreads();
  }
  // engine::argmax starts from index 0, which no later value beats when it is NaN.
  if (threadIdx.x == 0) out[blockIdx.x] = row[0] != row[0] || si[0] == n ? 0 : int(si[0]);
}

}  // namespace

void argmax_rows_cuda(const float* x, int64_t n_rows, int64_t n, int* out) {
  if (n_rows == 0) return;
  argmax_kernel<<<unsigned(n_rows), kThreads>>>(x, n, out);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kvaudit::engine::cuda
