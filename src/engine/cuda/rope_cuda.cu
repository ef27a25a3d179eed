// Rotate-half RoPE (ops_cuda.h). The cos/sin table is computed on the host with cpu::rope's float
// operations and the rotation rounds each product and difference separately (__fmul_rn, no FMA
// contraction), as the CPU build does (-ffp-contract=off): the result is bit-identical to cpu::rope.
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/pdl.cuh"
#include "engine/cuda/ops_cuda.h"
#include "engine/cuda/part_sums.cuh"
#include "engine/cuda/qkv_rope.cuh"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per (row, head, i < half) pair of a: [n, heads_a, head_dim], then of b (heads_b heads; a
// decode step rotates its queries and keys in one launch).
__global__ void rope_kernel(float* a, int heads_a, float* b, int heads_b, int64_t n, int head_dim, int half,
                            const float* cs) {
  pdl_trigger();
  pdl_wait();
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
  float x0 = xh[i], x1 = xh[i + half];
  rope_pair(x0, x1, cs[t * 2 * half + i], cs[t * 2 * half + half + i]);
  xh[i] = x0;
  xh[i + half] = x1;
}

// The packed product q|k|v [n, (heads_q + 2 heads_kv) head_dim], given as parts, into q and k
// rotated and v (qkv_rope.cuh): grid x over (head, u < head_dim / 2), y over rows. Each value is its
// parts added in part order, then its bias where there is one, then rope_kernel's rotation (u < half
// of a q or k head: the pair u, u + half), or copied (a v head's channels 2u, 2u + 1; a q or k
// head's channels past 2 half): add_chunks_kernel, add_bias_cuda and rope2_cuda's operations in
// their order.
__global__ void qkv_rope_kernel(PartSums p, QkvRope o, int64_t n) {
  pdl_trigger();
  pdl_wait();
  const int per_head = o.head_dim / 2, half = o.half;
  const int e = int(blockIdx.x) * kThreads + int(threadIdx.x);
  if (e >= (o.n_heads + 2 * o.n_kv_heads) * per_head) return;
  const int h = e / per_head, u = e % per_head;
  const bool qk = h < o.n_heads + o.n_kv_heads, rotate = qk && u < half;
  const int c0 = rotate ? u : qk ? 2 * half + 2 * (u - half) : 2 * u;
  const int c1 = rotate ? u + half : c0 + 1;
  const int64_t col = int64_t(h) * o.head_dim;
  for (int64_t t = blockIdx.y; t < n; t += gridDim.y)
    qkv_pair_put(qkv_pair(o, t, h, c0, c1, rotate), part_sum(p, t, col + c0), part_sum(p, t, col + c1));
}

void launch(float* a, int heads_a, float* b, int heads_b, int64_t n, int head_dim, int half, const float* cs) {
  const int64_t n_pairs = n * (heads_a + heads_b) * half;
  if (n_pairs == 0) return;
  launch_pdl(rope_kernel, unsigned((n_pairs + kThreads - 1) / kThreads), kThreads, 0, a, heads_a, b, heads_b, n,
             head_dim, half, cs);
}

}  // namespace

void rope_cuda(float* x, int64_t n, int n_heads, int head_dim, int half, const float* cs) {
  launch(x, n_heads, nullptr, 0, n, head_dim, half, cs);
}

void rope2_cuda(float* q, int n_heads, float* k, int n_kv_heads, int64_t n, int head_dim, int half, const float* cs) {
  launch(q, n_heads, k, n_kv_heads, n, head_dim, half, cs);
}

void qkv_rope_cuda(const PartSums& parts, const QkvBias& bias, float* q, int n_heads, float* k, float* v,
                   int n_kv_heads, int64_t n, int head_dim, int half, const float* cs, const RopeKv* kv) {
  if (n == 0) return;
  const QkvRope o{bias, q, k, v, n_heads, n_kv_heads, head_dim, half, cs, kv ? *kv : RopeKv{nullptr, nullptr}};
  const int64_t pairs = int64_t(n_heads + 2 * n_kv_heads) * (head_dim / 2);
  launch_pdl(qkv_rope_kernel, rows_cols_grid(n, pairs, 1, kThreads), kThreads, 0, parts, o, n);
}

}  // namespace kvaudit::engine::cuda
