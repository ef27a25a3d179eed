// Greedy decoding's argmax on the device (ops_cuda.h argmax_rows_cuda): one block per row (or per
// segment of a row, then one per row over the segments' answers), each thread the best of a strided
// slice, then a tree; the larger value wins, the smaller index on a
// tie, so the result is engine::argmax's whatever the order of the comparisons (NaN as it treats
// it: never taken, except at index 0, where it stays).
#include <algorithm>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/pdl.cuh"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 256;

__device__ bool better(float v, int64_t i, float bv, int64_t bi) { return v > bv || (v == bv && i < bi); }

// The block's best of every thread's (bv, bi) (bi == n: none), a tree in shared memory; every
// thread gets it.
__device__ void block_reduce(float& bv, int64_t& bi, int64_t n) {
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
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
  bv = sv[0];
  bi = si[0];
}

// The best (value, index) of x[i0, i1) by one block; bi = n: none (all NaN, or empty).
__device__ void block_best(const float* __restrict__ x, int64_t i0, int64_t i1, int64_t n, float& bv, int64_t& bi) {
  bv = -INFINITY;
  bi = n;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += kThreads) {
    const float v = x[i];
    if (v == v && (bi == n || better(v, i, bv, bi))) bv = v, bi = i;  // NaN never taken
  }
  block_reduce(bv, bi, n);
}

// engine::argmax starts from index 0, which no later value beats when it is NaN.
__device__ int final_index(const float* row, int64_t bi, int64_t n) { return row[0] != row[0] || bi == n ? 0 : int(bi); }

// Block r * segs + s: the best of row r's segment s; with one segment, the row's answer.
__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* __restrict__ x, int64_t n, int segs, int64_t seg,
                                                           float* __restrict__ seg_v, int64_t* __restrict__ seg_i,
                                                           int* __restrict__ out) {
  pdl_trigger();
  pdl_wait();
  const int64_t r = int64_t(blockIdx.x) / segs, i0 = int64_t(blockIdx.x) % segs * seg;
  const float* row = x + r * n;
  float bv;
  int64_t bi;
  block_best(row, i0, min(n, i0 + seg), n, bv, bi);
  if (threadIdx.x != 0) return;
  if (segs == 1) {
    out[r] = final_index(row, bi, n);
  } else {
    seg_v[blockIdx.x] = bv;
    seg_i[blockIdx.x] = bi;
  }
}

// Block r: the best of row r's segments (the same rule: a larger value, else the smaller index).
__global__ void __launch_bounds__(kThreads) argmax_merge_kernel(const float* __restrict__ x, int64_t n, int segs,
                                                                 const float* __restrict__ seg_v,
                                                                 const int64_t* __restrict__ seg_i, int* __restrict__ out) {
  pdl_trigger();
  pdl_wait();
  const int64_t r = blockIdx.x;
  float bv = -INFINITY;
  int64_t bi = n;
  for (int s = threadIdx.x; s < segs; s += kThreads) {
    const float v = seg_v[r * segs + s];
    const int64_t i = seg_i[r * segs + s];
    if (i < n && (bi == n || better(v, i, bv, bi))) bv = v, bi = i;
  }
  block_reduce(bv, bi, n);
  if (threadIdx.x == 0) out[r] = final_index(x + r * n, bi, n);
}

}  // namespace

// A few rows (a small batch's decode step) are cut into segments, so that more than a few SMs read
// the vocabulary (one block read a 128k-entry row in 74 us on an H200); the answer is the same.
void argmax_rows_cuda(const float* x, int64_t n_rows, int64_t n, int* out) {
  if (n_rows == 0) return;
  constexpr int64_t kSegment = 4096;
  const int segs = n_rows >= 64 ? 1 : int(std::clamp<int64_t>((n + kSegment - 1) / kSegment, 1, 64));
  const int64_t seg = (n + segs - 1) / segs;
  static DeviceBuffer<float> seg_v;
  static DeviceBuffer<int64_t> seg_i;
  if (segs > 1) {
    seg_v.resize(size_t(n_rows * segs));
    seg_i.resize(size_t(n_rows * segs));
  }
  launch_pdl(argmax_kernel, unsigned(n_rows * segs), kThreads, 0, x, n, segs, seg, seg_v.data(), seg_i.data(), out);
  if (segs > 1) {
    launch_pdl(argmax_merge_kernel, unsigned(n_rows), kThreads, 0, x, n, segs, seg_v.data(), seg_i.data(), out);
  }
}

}  // namespace kvaudit::engine::cuda
