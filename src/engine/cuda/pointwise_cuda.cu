// Element-wise ops on the device (ops_cuda.h): residual add, bias, gated activation, soft-capping,
// embedding lookup and row gather. Each output element depends on its own inputs only.
#include <cuda_bf16.h>

#include <algorithm>

#include "engine/cuda/activation.cuh"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/pdl.cuh"
#include "engine/cuda/ops_cuda.h"
#include "engine/cuda/part_sums.cuh"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  pdl_trigger();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n) x[i] = __fadd_rn(x[i], y[i]);
}

__global__ void bias_kernel(float* y, int64_t n_elems, int64_t m, const float* bias) {
  pdl_trigger();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n_elems) y[i] = __fadd_rn(y[i], bias[i % m]);
}

__global__ void gated_kernel(bool silu, const float* gate, const float* up, int64_t n_elems, float* out) {
  pdl_trigger();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n_elems) out[i] = __fmul_rn(act_value(silu, gate[i]), up[i]);
}

// gated_kernel on gate and up given as parts (each added in part order first), the result in bf16;
// V: four columns a thread (d_ff and the parts' layout multiples of 4). by8: output j's gate and up
// at columns 16 (j / 8) + j % 8 of theirs (gated_parts_cuda).
template <bool V>
__global__ void gated_parts_kernel(bool silu, PartSums gate, PartSums up, int64_t n, int64_t d_ff, bool by8,
                                   __nv_bfloat16* __restrict__ out) {
  pdl_trigger();
  pdl_wait();
  const int64_t j = (int64_t(blockIdx.x) * kThreads + threadIdx.x) * (V ? 4 : 1);
  if (j >= d_ff) return;
  const int64_t col = by8 ? 2 * (j & ~int64_t(7)) + (j & 7) : j;
  for (int64_t t = blockIdx.y; t < n; t += gridDim.y) {
    if constexpr (V) {
      const float4 g = part_sum4(gate, t, col), u = part_sum4(up, t, col);
      const __nv_bfloat162 lo = __floats2bfloat162_rn(__fmul_rn(act_value(silu, g.x), u.x),
                                                      __fmul_rn(act_value(silu, g.y), u.y));
      const __nv_bfloat162 hi = __floats2bfloat162_rn(__fmul_rn(act_value(silu, g.z), u.z),
                                                      __fmul_rn(act_value(silu, g.w), u.w));
      uint2 w;
      w.x = *reinterpret_cast<const uint32_t*>(&lo);
      w.y = *reinterpret_cast<const uint32_t*>(&hi);
      *reinterpret_cast<uint2*>(out + t * d_ff + j) = w;
    } else {
      out[t * d_ff + j] = __float2bfloat16_rn(__fmul_rn(act_value(silu, part_sum(gate, t, col)), part_sum(up, t, col)));
    }
  }
}

__global__ void softcap_kernel(float* x, int64_t n, float cap) {
  pdl_trigger();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n) x[i] = __fmul_rn(cap, tanhf(__fdiv_rn(x[i], cap)));
}

__device__ inline float load(const float* t, int64_t i) { return t[i]; }
__device__ inline float load(const __nv_bfloat16* t, int64_t i) { return __bfloat162float(t[i]); }

template <typename W>
__global__ void embed_kernel(const int* tokens, int64_t n_elems, const W* table, int64_t d, float scale, float* x) {
  pdl_trigger();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n_elems) return;
  const float e = load(table, int64_t(tokens[i / d]) * d + i % d);
  x[i] = scale == 1.0f ? e : __fmul_rn(e, scale);
}

__global__ void gather_kernel(const float* src, const int64_t* rows, int64_t n_elems, int64_t d, float* dst) {
  pdl_trigger();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n_elems) dst[i] = src[rows[i / d] * d + i % d];
}

// Block row y copies segment y, the x blocks striding over its values.
__global__ void scatter_kernel(const CopySegment* segments, const float* staged) {
  const CopySegment sg = segments[blockIdx.y];
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < sg.n; i += int64_t(gridDim.x) * kThreads)
    sg.dst[i] = staged[sg.offset + i];
}

}  // namespace

void scatter_cuda(const CopySegment* segments, int64_t n_segments, int64_t max_n, const float* staged) {
  if (n_segments == 0 || max_n == 0) return;
  const unsigned bx = unsigned(std::min<int64_t>(64, (max_n + kThreads - 1) / kThreads));
  scatter_kernel<<<dim3(bx, unsigned(n_segments)), kThreads, 0, stream()>>>(segments, staged);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

void add_inplace_cuda(float* x, const float* y, int64_t n) {
  if (n == 0) return;
  launch_pdl(add_kernel, blocks_for(n), kThreads, 0, x, y, n);
}

void add_bias_cuda(float* y, int64_t n, int64_t m, const float* bias) {
  if (n * m == 0) return;
  launch_pdl(bias_kernel, blocks_for(n * m), kThreads, 0, y, n * m, m, bias);
}

void gated_activation_cuda(cpu::Activation act, const float* gate, const float* up, int64_t n, int64_t d_ff, float* out) {
  if (n * d_ff == 0) return;
  launch_pdl(gated_kernel, blocks_for(n * d_ff), kThreads, 0, act == cpu::Activation::kSilu, gate, up, n * d_ff, out);
}

void gated_parts_cuda(cpu::Activation act, const PartSums& gate, const PartSums& up, int64_t n, int64_t d_ff,
                      uint16_t* outb, bool by8) {
  if (n * d_ff == 0) return;
  if (by8 && d_ff % 8 != 0) throw_runtime("gated_parts_cuda: columns interleaved by 8 need d_ff a multiple of 8");
  const bool silu = act == cpu::Activation::kSilu;
  auto* out = reinterpret_cast<__nv_bfloat16*>(outb);
  if (d_ff % 4 == 0 && reinterpret_cast<uintptr_t>(outb) % 8 == 0 && sums4_ok(gate) && sums4_ok(up))
    launch_pdl(gated_parts_kernel<true>, rows_cols_grid(n, d_ff, 4, kThreads), kThreads, 0, silu, gate, up, n, d_ff,
               by8, out);
  else
    launch_pdl(gated_parts_kernel<false>, rows_cols_grid(n, d_ff, 1, kThreads), kThreads, 0, silu, gate, up, n, d_ff,
               by8, out);
}

void softcap_cuda(float* x, int64_t n, float cap) {
  if (n == 0) return;
  launch_pdl(softcap_kernel, blocks_for(n), kThreads, 0, x, n, cap);
}

void embed_cuda(const int* tokens, int64_t n, const void* table, WeightType wt, int64_t d, float scale, float* x) {
  if (n * d == 0) return;
  if (wt == WeightType::kF32)
    launch_pdl(embed_kernel<float>, blocks_for(n * d), kThreads, 0, tokens, n * d, static_cast<const float*>(table), d,
               scale, x);
  else
    launch_pdl(embed_kernel<__nv_bfloat16>, blocks_for(n * d), kThreads, 0, tokens, n * d,
               static_cast<const __nv_bfloat16*>(table), d, scale, x);
}

void gather_rows_cuda(const float* src, const int64_t* rows, int64_t n_rows, int64_t d, float* dst) {
  if (n_rows * d == 0) return;
  launch_pdl(gather_kernel, blocks_for(n_rows * d), kThreads, 0, src, rows, n_rows * d, d, dst);
}

}  // namespace kvaudit::engine::cuda
