// One pair of values of the packed q|k|v product on its way out: the bias, the rotation, the q, k or
// v row and the cache store. One definition for the two kernels that apply it (qkv_rope_cuda on
// summed parts, and the q/k/v product on its own tiles), so both give the same bits. What a pair
// needs besides its sums (qkv_pair) is loaded apart from its arithmetic (qkv_pair_put): a product
// has those loads in flight while it streams its weights.
#pragma once
#include <cstdint>

#include "core/half.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {

// Where row t's k or v head goes in its sequence's cache (RopeKv), or null: the stored row and
// whether it holds bf16 (else fp32 as computed).
struct CacheRow {
  uint32_t* words = nullptr;
  bool bf16 = false;
  CacheRow() = default;
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

// Rotate-half RoPE of one pair (x0 = channel u, x1 = channel u + half): q * cos + (-q2) * sin, q2 *
// cos + q1 * sin, each product and sum rounded (no FMA contraction), as cpu::rope rounds them.
__device__ inline void rope_pair(float& x0, float& x1, float c, float s) {
  const float r0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
  const float r1 = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
  x0 = r0;
  x1 = r1;
}

// Channels c0 and c1 of packed head h (q's heads, then k's, then v's) at batch row t: where they go
// and their biases and rotation (rotate: a q or k pair c0 = u < half, c1 = u + half).
struct QkvPair {
  float* head = nullptr;  // the row's head in q, k or v
  int at = 0;             // the head's first channel within its role's row (the cache's)
  int c0 = 0, c1 = 0;
  bool biased = false, rotate = false;
  float b0 = 0.0f, b1 = 0.0f, cos = 0.0f, sin = 0.0f;
  CacheRow row;
};

__device__ inline QkvPair qkv_pair(const QkvRope& o, int64_t t, int h, int c0, int c1, bool rotate) {
  QkvPair p;
  const bool is_q = h < o.n_heads, is_k = !is_q && h < o.n_heads + o.n_kv_heads;
  const int hh = is_q ? h : is_k ? h - o.n_heads : h - o.n_heads - o.n_kv_heads;  // the head within its role
  const float* b = is_q ? o.bias.q : is_k ? o.bias.k : o.bias.v;
  const int64_t width = int64_t(is_q ? o.n_heads : o.n_kv_heads) * o.head_dim;
  p.head = (is_q ? o.q : is_k ? o.k : o.v) + t * width + int64_t(hh) * o.head_dim;
  p.at = hh * o.head_dim;
  p.c0 = c0;
  p.c1 = c1;
  p.rotate = rotate;
  if (b) p.biased = true, p.b0 = b[p.at + c0], p.b1 = b[p.at + c1];
  if (rotate) p.cos = o.cs[t * 2 * o.half + c0], p.sin = o.cs[t * 2 * o.half + o.half + c0];
  if (!is_q) p.row = CacheRow(o.store, t, is_k);
  return p;
}

// The pair's sums x0, x1 biased, rotated, stored.
__device__ inline void qkv_pair_put(const QkvPair& p, float x0, float x1) {
  if (p.biased) x0 = __fadd_rn(x0, p.b0), x1 = __fadd_rn(x1, p.b1);
  if (p.rotate) rope_pair(x0, x1, p.cos, p.sin);
  p.head[p.c0] = x0;
  p.head[p.c1] = x1;
  if (p.row.words) {
    p.row.put(p.at + p.c0, x0);
    p.row.put(p.at + p.c1, x1);
  }
}

}  // namespace kvaudit::engine::cuda
