// Rotate-half RoPE (ops_cuda.h). The cos/sin table is computed on the host with cpu::rope's float
// operations and the rotation rounds each product and difference separately (__fmul_rn, no FMA
// contraction), as the CPU build does (-ffp-contract=off): the result is bit-identical to cpu::rope.
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per (row, head, i < half) pair.
__global__ void rope_kernel(float* x, int64_t n_pairs, int n_heads, int head_dim, int half, const float* cs) {
  const int64_t e = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (e >= n_pairs) return;
  const int i = int(e % half);
  const int64_t th = e / half;  // row * n_heads + head
  const int64_t t = th / n_heads;
  float* xh = x + th * head_dim;
  const float c = cs[t * 2 * half + i], s = cs[t * 2 * half + half + i];
  const float x0 = xh[i], x1 = xh[i + half];
  xh[i] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));         // q * cos + (-q2) * sin
  xh[i + half] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));  // q2 * cos + q1 * sin
}

}  // namespace

void rope_cuda(float* x, int64_t n, int n_heads, int head_dim, int half, const float* cs) {
  const int64_t n_pairs = n * n_heads * half;
  if (n_pairs == 0) return;
  rope_kernel<<<unsigned((n_pairs + kThreads - 1) / kThreads), kThreads>>>(x, n_pairs, n_heads, head_dim, half, cs);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kvaudit::engine::cuda
