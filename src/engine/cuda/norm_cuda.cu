// RMSNorm on the device (ops_cuda.h, cpu::rmsnorm): one block per row; the sum of squares is
// each thread's strided partial sum, then a fixed tree over the block, so a row's value depends
// on its width only.
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 256, kUnroll = 4;

// With `add` non-null: x += add first (the residual add before a norm), written back to x, and
// the norm of the sum; the same bits as add_inplace_cuda then rmsnorm_cuda, one launch fewer.
__global__ void rmsnorm_kernel(bool one_plus, float* x, const float* add, int d, const float* w, float eps, float* y) {
  __shared__ float part[kThreads];
  float* xr = x + int64_t(blockIdx.x) * d;
  float* yr = y + int64_t(blockIdx.x) * d;
  const float* ar = add ? add + int64_t(blockIdx.x) * d : nullptr;
  // Each thread's values c = t, t + kThreads, ... kUnroll at a time: their loads in flight together
  // (a one-row step is latency-bound), the fma chain still in c order.
  float ss = 0.0f;
  int c = threadIdx.x;
  for (; c + (kUnroll - 1) * kThreads < d; c += kUnroll * kThreads) {
    float v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = ar ? __fadd_rn(xr[c + u * kThreads], ar[c + u * kThreads]) : xr[c + u * kThreads];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (ar) xr[c + u * kThreads] = v[u];
      ss = fmaf(v[u], v[u], ss);
    }
  }
  for (; c < d; c += kThreads) {
    const float v = ar ? __fadd_rn(xr[c], ar[c]) : xr[c];
    if (ar) xr[c] = v;
    ss = fmaf(v, v, ss);
  }
  part[threadIdx.x] = ss;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (int(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  // hidden_states * torch.rsqrt(variance + eps), as 1 / sqrt (IEEE, no fast math)
  const float inv = 1.0f / sqrtf(part[0] / float(d) + eps);
  __syncthreads();  // every thread has read part[0] before an aliased y overwrites nothing it needs
  const auto out = [&](float xv, float wv) { return one_plus ? __fmul_rn(__fmul_rn(xv, inv), __fadd_rn(1.0f, wv)) : __fmul_rn(wv, __fmul_rn(xv, inv)); };
  c = threadIdx.x;
  for (; c + (kUnroll - 1) * kThreads < d; c += kUnroll * kThreads) {
    float xv[kUnroll], wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) xv[u] = xr[c + u * kThreads], wv[u] = w[c + u * kThreads];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) yr[c + u * kThreads] = out(xv[u], wv[u]);
  }
  for (; c < d; c += kThreads) yr[c] = out(xr[c], w[c]);
}

}  // namespace

void rmsnorm_cuda(cpu::NormKind kind, const float* x, int64_t n, int64_t d, const float* w, float eps, float* y) {
  if (n == 0) return;
  // x is only read here (add == nullptr), so dropping const is safe.
  rmsnorm_kernel<<<unsigned(n), kThreads>>>(kind == cpu::NormKind::kRmsOnePlus, const_cast<float*>(x), nullptr, int(d), w,
                                            eps, y);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

void add_rmsnorm_cuda(cpu::NormKind kind, float* x, const float* add, int64_t n, int64_t d, const float* w, float eps,
                      float* y) {
  if (n == 0) return;
  rmsnorm_kernel<<<unsigned(n), kThreads>>>(kind == cpu::NormKind::kRmsOnePlus, x, add, int(d), w, eps, y);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kvaudit::engine::cuda
