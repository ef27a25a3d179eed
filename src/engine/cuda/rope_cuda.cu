// Rotate-half RoPE (ops_cuda.h). The cos/sin table is computed on the host with cpu::rope's float
// operations and the rotation rounds each product and difference separately (__fmul_rn, no FMA
// contraction), as the CPU build does (-ffp-contract=off): the result is bit-identical to cpu::rope.
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per (row, head, i < half) pair of a: [n, heads_a, head_dim], then of b (heads_b heads; a
// decode step rotates its queries and keys in one launch).
__global__ void rope_kernel(float* a, int heads_a, float* b, int heads_b, int64_t n, int head_dim, int half,
                            const float* cs) {
  int64_t e = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t pairs_a = n * heads_a * half;
  float* x = a;
  int n_heads = heads_a;
  if (e >= pairs_a) {
    e -= pairs_a;
    if (e >= n * heads_b * half) return;
    x = b;
    n_heads = heads_b;
  }
  const int i = int(e % half);
  const int64_t th = e / half;  // row * n_heads + head
  const int64_t t = th / n_heads;
  float* xh = x + th * head_dim;
  const float c = cs[t * 2 * half + i], s = cs[t * 2 * half + half + i];
  const float x0 = xh[i], x1 = xh[i + half];
  xh[i] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));         // q * cos + (-q2) * sin
  xh[i + half] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));  // q2 * cos + q1 * sin
}

void launch(float* a, int heads_a, float* b, int heads_b, int64_t n, int head_dim, int half, const float* cs) {
  const int64_t n_pairs = n * (heads_a + heads_b) * half;
  if (n_pairs == 0) return;
  rope_kernel<<<unsigned((n_pairs + kThreads - 1) / kThreads), kThreads, 0, stream()>>>(a, heads_a, b, heads_b, n, head_dim, half,
                                                                           cs);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void rope_cuda(float* x, int64_t n, int n_heads, int head_dim, int half, const float* cs) {
  launch(x, n_heads, nullptr, 0, n, head_dim, half, cs);
}

void rope2_cuda(float* q, int n_heads, float* k, int n_kv_heads, int64_t n, int head_dim, int half, const float* cs) {
  launch(q, n_heads, k, n_kv_heads, n, head_dim, half, cs);
}

}  // namespace kvaudit::engine::cuda
