// Rotate-half RoPE (ops_cuda.h). The cos/sin table is computed on the host with cpu::rope's float
// operations and the rotation rounds each product and difference separately (__fmul_rn, no FMA
// contraction), as the CPU build does (-ffp-contract=off): the result is bit-identical to cpu::rope.
#include "core/half.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/pdl.cuh"
#include "engine/cuda/ops_cuda.h"
#include "engine/cuda/part_sums.cuh"

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
  const float c = cs[t * 2 * half + i], s = cs[t * 2 * half + half + i];
  const float x0 = xh[i], x1 = xh[i + half];
  xh[i] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));         // q * cos + (-q2) * sin
  xh[i + half] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));  // q2 * cos + q1 * sin
}

// The packed product q|k|v [n, (heads_q + 2 heads_kv) head_dim], given as parts, into q and k
// rotated and v: grid x over (head, u < head_dim / 2), y over rows. Each value is its parts added in
// part order, then its bias where there is one, then rope_kernel's rotation (u < half of a q or k
// head: the pair u, u + half), or copied (a v head's channels 2u, 2u + 1; a q or k head's channels
// past 2 half): add_chunks_kernel, add_bias_cuda and rope2_cuda's operations in their order.
// Where row t's k or v head goes in its sequence's cache (RopeKv), or null: the stored row and
// whether it holds bf16 (else fp32 as computed).
struct CacheRow {
  uint32_t* words = nullptr;
  bool bf16 = false;
  __device__ CacheRow(const RopeKv& kvw, int64_t t, bool keys) {
    if (!kvw.rows) return;
    const AttnRow ar = kvw.rows[t];
    const SlotKv& skv = kvw.slots_kv[ar.slot];
    const KvView& view = keys ? skv.k : skv.v;
    if (!skv.write || !rope_stores(view.layout)) return;
    words = view.words + ar.pos * int64_t(view.layout.row_words());
    bf16 = view.layout.kind == kv::LayoutKind::kBf16;
  }
  // Channel c's value, as kv_write_cuda's row kernel stores it (channel c at position c).
  __device__ void put(int c, float x) const {
    if (bf16) reinterpret_cast<uint16_t*>(words)[c] = float_to_bf16(x);
    else words[c] = __float_as_uint(x);
  }
};

__global__ void qkv_rope_kernel(PartSums p, QkvBias bias, float* q, float* k, float* v, int heads_q, int heads_kv,
                                int64_t n, int head_dim, int half, const float* cs, RopeKv kvw) {
  pdl_trigger();
  pdl_wait();
  const int per_head = head_dim / 2;
  const int e = int(blockIdx.x) * kThreads + int(threadIdx.x);
  if (e >= (heads_q + 2 * heads_kv) * per_head) return;
  const int h = e / per_head, u = e % per_head;
  const bool is_q = h < heads_q, is_k = !is_q && h < heads_q + heads_kv;
  const int hh = is_q ? h : is_k ? h - heads_q : h - heads_q - heads_kv;  // the head within its role
  const bool rotate = (is_q || is_k) && u < half;
  const int c0 = rotate ? u : (is_q || is_k) ? 2 * half + 2 * (u - half) : 2 * u;
  const int c1 = rotate ? u + half : c0 + 1;
  const float* b = is_q ? bias.q : is_k ? bias.k : bias.v;
  const int64_t width = int64_t(is_q ? heads_q : heads_kv) * head_dim;
  float* dst = is_q ? q : is_k ? k : v;
  for (int64_t t = blockIdx.y; t < n; t += gridDim.y) {
    float x0 = part_sum(p, t, int64_t(h) * head_dim + c0), x1 = part_sum(p, t, int64_t(h) * head_dim + c1);
    if (b) x0 = __fadd_rn(x0, b[hh * head_dim + c0]), x1 = __fadd_rn(x1, b[hh * head_dim + c1]);
    float* xh = dst + t * width + int64_t(hh) * head_dim;
    if (rotate) {
      const float c = cs[t * 2 * half + u], s = cs[t * 2 * half + half + u];
      const float r0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s)), r1 = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
      x0 = r0;
      x1 = r1;
    }
    xh[c0] = x0;
    xh[c1] = x1;
    if (!is_q) {
      const CacheRow row(kvw, t, is_k);
      if (row.words) {
        row.put(hh * head_dim + c0, x0);
        row.put(hh * head_dim + c1, x1);
      }
    }
  }
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
  const int64_t pairs = int64_t(n_heads + 2 * n_kv_heads) * (head_dim / 2);
  launch_pdl(qkv_rope_kernel, rows_cols_grid(n, pairs, 1, kThreads), kThreads, 0, parts, bias, q, k, v, n_heads,
             n_kv_heads, n, head_dim, half, cs, kv ? *kv : RopeKv{nullptr, nullptr});
}

}  // namespace kvaudit::engine::cuda
