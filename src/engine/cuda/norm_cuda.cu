// RMSNorm on the device (ops_cuda.h, cpu::rmsnorm): one block per row, as many threads as the
// width gives each ~4 values (threads_for); the sum of squares is each thread's strided partial
// sum, then a fixed tree over the block, so a row's value depends on its width only.
#include <cuda_bf16.h>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/pdl.cuh"
#include "engine/cuda/ops_cuda.h"
#include "engine/cuda/part_sums.cuh"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kMaxThreads = 1024, kUnroll = 4;

// A power of two from 32 to kMaxThreads, fixed by the width alone (a one-row step has one block:
// its loads are what many threads keep in flight).
unsigned threads_for(int64_t d) {
  unsigned t = 32;
  while (t < kMaxThreads && int64_t(t) * kUnroll < d) t *= 2;
  return t;
}

// With add.p non-null: x += add first (the residual add before a norm, add's parts summed in order),
// written back to x, and the norm of the sum; the same bits as add_inplace_cuda then rmsnorm_cuda,
// one launch fewer. y (fp32) and yb (bf16 bits) are each written where non-null; w null: the add only.
__global__ void rmsnorm_kernel(bool one_plus, float* x, PartSums add, int d, const float* w, float eps, float* y,
                               uint16_t* yb) {
  pdl_wait();
  pdl_trigger();
  __shared__ float part[kMaxThreads];
  const int threads = int(blockDim.x);
  const int64_t row = blockIdx.x;
  float* xr = x + row * d;
  const bool adds = add.p != nullptr;
  // Each thread's values c = t, t + threads, ... kUnroll at a time: their loads in flight together
  // (a one-row step is latency-bound), the fma chain still in c order.
  float ss = 0.0f;
  int c = threadIdx.x;
  for (; c + (kUnroll - 1) * threads < d; c += kUnroll * threads) {
    float v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int cu = c + u * threads;
      v[u] = adds ? __fadd_rn(xr[cu], part_sum(add, row, cu)) : xr[cu];
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (adds) xr[c + u * threads] = v[u];
      ss = fmaf(v[u], v[u], ss);
    }
  }
  for (; c < d; c += threads) {
    const float v = adds ? __fadd_rn(xr[c], part_sum(add, row, c)) : xr[c];
    if (adds) xr[c] = v;
    ss = fmaf(v, v, ss);
  }
  if (w == nullptr) return;
  part[threadIdx.x] = ss;
  __syncthreads();
  for (int s = threads / 2; s > 0; s /= 2) {
    if (int(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  // hidden_states * torch.rsqrt(variance + eps), as 1 / sqrt (IEEE, no fast math)
  const float inv = 1.0f / sqrtf(part[0] / float(d) + eps);
  __syncthreads();  // every thread has read part[0] before an aliased y overwrites nothing it needs
  const auto out = [&](float xv, float wv) { return one_plus ? __fmul_rn(__fmul_rn(xv, inv), __fadd_rn(1.0f, wv)) : __fmul_rn(wv, __fmul_rn(xv, inv)); };
  const auto store = [&](int i, float v) {
    if (y) y[row * d + i] = v;
    if (yb) yb[row * d + i] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
  };
  c = threadIdx.x;
  for (; c + (kUnroll - 1) * threads < d; c += kUnroll * threads) {
    float xv[kUnroll], wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) xv[u] = xr[c + u * threads], wv[u] = w[c + u * threads];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) store(c + u * threads, out(xv[u], wv[u]));
  }
  for (; c < d; c += threads) store(c, out(xr[c], w[c]));
}

}  // namespace

void rmsnorm_cuda(cpu::NormKind kind, const float* x, int64_t n, int64_t d, const float* w, float eps, float* y) {
  if (n == 0) return;
  // x is only read here (no add), so dropping const is safe.
  launch_pdl(rmsnorm_kernel, unsigned(n), threads_for(d), 0, kind == cpu::NormKind::kRmsOnePlus, const_cast<float*>(x),
             PartSums{nullptr, 0}, int(d), w, eps, y, nullptr);
}

void add_rmsnorm_cuda(cpu::NormKind kind, float* x, const float* add, int64_t n, int64_t d, const float* w, float eps,
                      float* y) {
  add_parts_rmsnorm_cuda(kind, x, PartSums{add, d}, n, d, w, eps, y, nullptr);
}

void add_parts_rmsnorm_cuda(cpu::NormKind kind, float* x, const PartSums& add, int64_t n, int64_t d, const float* w,
                            float eps, float* y, uint16_t* yb) {
  if (n == 0) return;
  launch_pdl(rmsnorm_kernel, unsigned(n), threads_for(d), 0, kind == cpu::NormKind::kRmsOnePlus, x, add, int(d), w, eps,
             y, yb);
}

}  // namespace kvaudit::engine::cuda
