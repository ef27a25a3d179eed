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

// The block's sum of the threads' ss, in the order of the tree part[i] += part[i + s] for s =
// threads / 2 .. 1 (the bits the norm has always had), with two barriers instead of one a level:
// the levels above 16 pair the warps' same lanes (a tree over warps, in warp 0's registers), the
// last five are a shuffle within warp 0 (lane i + s's value added to lane i's: IEEE addition
// commutes). Every thread gets the sum.
__device__ float block_sum(float ss) {
  __shared__ float part[kMaxThreads];
  const int warps = int(blockDim.x) / 32, lane = int(threadIdx.x) % 32;
  part[threadIdx.x] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float r[kMaxThreads / 32];
#pragma unroll
    for (int w = 0; w < kMaxThreads / 32; ++w) r[w] = w < warps ? part[32 * w + lane] : 0.0f;
#pragma unroll
    for (int s = kMaxThreads / 64; s > 0; s /= 2)
#pragma unroll
      for (int w = 0; w < s; ++w)
        if (s < warps) r[w] += r[w + s];
    float v = r[0];
    for (int s = 16; s > 0; s /= 2) v += __shfl_xor_sync(0xffffffffu, v, s);
    if (lane == 0) part[0] = v;
  }
  __syncthreads();
  return part[0];
}

// With add.p non-null: x += add first (the residual add before a norm, add's parts summed in order),
// written back to x, and the norm of the sum; the same bits as add_inplace_cuda then rmsnorm_cuda,
// one launch fewer. y (fp32) and yb (bf16 bits) are each written where non-null; w null: the add only.
// Where a thread holds all its values (d <= kUnroll * threads: an 8B's 4,096 on 1,024 threads), they
// stay in registers between the sum and the output, and the weights, which no kernel writes, are
// loaded before the wait (a one-row step is a chain of latencies: one round trip fewer after it).
__global__ void rmsnorm_kernel(bool one_plus, float* x, PartSums add, int d, const float* w, float eps, float* y,
                               uint16_t* yb) {
  const int threads = int(blockDim.x), tid = int(threadIdx.x);
  const bool held = d <= kUnroll * threads;
  float wv[kUnroll];
  if (held && w != nullptr)
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) wv[u] = tid + u * threads < d ? w[tid + u * threads] : 0.0f;
  pdl_trigger();
  pdl_wait();
  TlMarks marks;
  const int64_t row = blockIdx.x;
  float* xr = x + row * d;
  const bool adds = add.p != nullptr;
  const auto in = [&](int c) { return adds ? __fadd_rn(xr[c], part_sum(add, row, c)) : xr[c]; };
  const auto out = [&](float xv, float wgt, float inv) {
    return one_plus ? __fmul_rn(__fmul_rn(xv, inv), __fadd_rn(1.0f, wgt)) : __fmul_rn(wgt, __fmul_rn(xv, inv));
  };
  const auto store = [&](int i, float v) {
    if (y) y[row * d + i] = v;
    if (yb) yb[row * d + i] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
  };
  // Each thread's values c = t, t + threads, ... : their loads in flight together, the fma chain in
  // c order (both paths).
  float ss = 0.0f;
  if (held) {
    float v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = tid + u * threads < d ? in(tid + u * threads) : 0.0f;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (tid + u * threads < d) {
        if (adds) xr[tid + u * threads] = v[u];
        ss = fmaf(v[u], v[u], ss);
      }
    marks.mark();
    if (w == nullptr) return marks.flush();
    // hidden_states * torch.rsqrt(variance + eps), as 1 / sqrt (IEEE, no fast math)
    const float inv = 1.0f / sqrtf(block_sum(ss) / float(d) + eps);
    marks.mark();
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (tid + u * threads < d) store(tid + u * threads, out(v[u], wv[u], inv));
    marks.mark();
    return marks.flush();
  }
  int c = tid;
  for (; c + (kUnroll - 1) * threads < d; c += kUnroll * threads) {
    float v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = in(c + u * threads);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (adds) xr[c + u * threads] = v[u];
      ss = fmaf(v[u], v[u], ss);
    }
  }
  for (; c < d; c += threads) {
    const float v = in(c);
    if (adds) xr[c] = v;
    ss = fmaf(v, v, ss);
  }
  if (w == nullptr) return;
  const float inv = 1.0f / sqrtf(block_sum(ss) / float(d) + eps);
  // (an aliased y: each thread reads its own values before writing them)
  c = tid;
  for (; c + (kUnroll - 1) * threads < d; c += kUnroll * threads) {
    float xv[kUnroll], wgt[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) xv[u] = xr[c + u * threads], wgt[u] = w[c + u * threads];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) store(c + u * threads, out(xv[u], wgt[u], inv));
  }
  for (; c < d; c += threads) store(c, out(xr[c], w[c], inv));
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
