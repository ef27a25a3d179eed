// Quantize-on-write of the KV cache (ops_cuda.h kv_write_cuda), in up to four launches per layer:
//  1. `tensor` sites on a sequence's first rows: (s, z) over all of them (one block per slot);
//  2. token-wise rows leaving the residual window (or, without one, every new row): one block per
//     row: the row into shared memory (from the new rows, or from the fp16 ring), its parameters
//     (a set's min/max by warp then kv::affine_fit_range; the fp8 row scale; ggml's block formulas,
//     a thread per block of 32), then whole 32-bit words of codes;
//  3. `channel` blocks of N rows leaving the window: one block per (block, slot, role), a thread per
//     channel taking min/max over the N rows in row order (std::min's order, as the CPU's), then
//     the codes of the N rows;
//  4. the new rows that stay in the window, rounded to fp16 into the ring (after 2 and 3 read it).
// min and max are exact in any order but for ±0 and NaN, which row order settles as the CPU does,
// so the parameters are the CPU's bits.
#include <cfloat>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/pdl.cuh"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;

// std::min(lo, v) / std::max(hi, v) as the CPU's minmax_span writes them.
__device__ void take(float v, float& lo, float& hi) {
  lo = v < lo ? v : lo;
  hi = hi < v ? v : hi;
}

__device__ void warp_minmax(float& lo, float& hi) {
  for (int o = 16; o > 0; o /= 2) {
    take(__shfl_xor_sync(0xffffffffu, lo, o), lo, hi);
    take(__shfl_xor_sync(0xffffffffu, hi, o), lo, hi);
  }
}

// min and max of x[0..n) over the block; every thread gets them.
__device__ void block_minmax(const float* x, int64_t n, float& lo_out, float& hi_out) {
  __shared__ float part[2][kWarps];
  float lo = x[0], hi = x[0];
  for (int64_t i = threadIdx.x; i < n; i += kThreads) take(x[i], lo, hi);
  warp_minmax(lo, hi);
  const int w = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) part[0][w] = lo, part[1][w] = hi;
  __syncthreads();
  lo = part[0][0], hi = part[1][0];
  for (int i = 1; i < kWarps; ++i) take(part[0][i], lo, hi), take(part[1][i], lo, hi);
  __syncthreads();
  lo_out = lo;
  hi_out = hi;
}

// One site's write in a call: its storage, and where its rows come from.
struct Site {
  const KvView* view;
  const float* x_new;  // the slot's new rows [n, width]
  int64_t pos, n;      // positions pos..pos+n-1
  int64_t q_old, q_new;

  __device__ Site(const SlotKv& skv, const SlotRows& r, bool keys, const float* k_new, const float* v_new)
      : view(keys ? &skv.k : &skv.v),
        x_new((keys ? k_new : v_new) + r.off * int64_t(view->layout.width)),
        pos(r.pos),
        n(r.n),
        q_old(view->layout.quantized_rows(r.pos)),
        q_new(view->layout.quantized_rows(r.pos + r.n)) {}
  // Value c of row j as the scheme sees it: a new row, rounded through fp16 when there is a window
  // (the residual's storage; SPEC.md §3), or an older row from the ring.
  __device__ float operator()(int64_t j, int c) const {
    const kv::KvLayout& L = view->layout;
    if (j >= pos) {
      const float x = x_new[(j - pos) * L.width + c];
      return L.residual > 0 ? round_fp16(x) : x;
    }
    return fp16_to_float(view->residual[int(j % L.residual) * L.width + c]);
  }
};

// Whole 32-bit words of a packed row from code(i), i = 0..width-1.
template <typename Code>
__device__ void write_words(uint32_t* words, int width, int bits, int first, int step, Code code) {
  // A row's bits fit an int (kMaxKvWidth values of at most 32 bits): 32-bit division, the cheap one.
  const int n_words = (width * bits + 31) / 32;
  for (int wd = first; wd < n_words; wd += step) {
    const int b0 = wd * 32;
    const int i0 = b0 / bits, i1 = min(width - 1, (b0 + 31) / bits);
    uint32_t word = 0;
    for (int i = i0; i <= i1; ++i) {
      const uint32_t c = code(i);
      const int sh = i * bits - b0;  // negative: the code began in the previous word
      word |= sh >= 0 ? c << sh : c >> -sh;
    }
    words[wd] = word;
  }
}

__global__ void __launch_bounds__(kThreads) fit_tensor_kernel(const SlotKv* __restrict__ slots_kv,
                                                              const SlotRows* __restrict__ rows,
                                                              const float* __restrict__ k_new,
                                                              const float* __restrict__ v_new) {
  pdl_trigger();
  pdl_wait();
  const SlotKv& skv = slots_kv[blockIdx.x];
  const bool keys = blockIdx.y == 0;
  if (!skv.write || !(keys ? skv.fit_k : skv.fit_v)) return;
  const Site site(skv, rows[blockIdx.x], keys, k_new, v_new);
  const kv::KvLayout& L = site.view->layout;
  if (L.kind != kv::LayoutKind::kInt || !L.tensor || site.n == 0) return;
  float lo, hi;
  block_minmax(site.x_new, site.n * L.width, lo, hi);
  if (threadIdx.x == 0) {
    const kv::AffineParams p = kv::affine_fit_range(L.bits, L.sym, lo, hi);
    float* t = site.view->params;
    t[0] = p.scale, t[1] = p.zero, t[2] = p.qscale;
  }
}

__global__ void __launch_bounds__(kThreads) row_kernel(const SlotKv* __restrict__ slots_kv,
                                                       const SlotRows* __restrict__ rows,
                                                       const float* __restrict__ k_new,
                                                       const float* __restrict__ v_new, bool rope_wrote) {
  pdl_trigger();
  pdl_wait();
  __shared__ float s_scale[kMaxKvSets], s_zero[kMaxKvSets], s_qscale[kMaxKvSets];
  __shared__ float s_fp8;
  extern __shared__ float xs[];  // [width] the row in stored (position) order, then [width] ggml codes
  const SlotKv& skv = slots_kv[blockIdx.y];
  if (!skv.write) return;
  const Site site(skv, rows[blockIdx.y], blockIdx.z == 0, k_new, v_new);
  const kv::KvLayout L = site.view->layout;
  if (L.channel() || (rope_wrote && rope_stores(L))) return;  // (the latter: qkv_rope_cuda stored it)
  const int64_t j = site.q_old + blockIdx.x;
  if (j >= site.q_new) return;
  const int w = L.width;
  uint8_t* codes = reinterpret_cast<uint8_t*>(xs + w);
  for (int i = threadIdx.x; i < w; i += kThreads) xs[i] = site(j, L.channel_at(i));
  __syncthreads();
  uint32_t* words = site.view->words + j * int64_t(L.row_words());
  float* params = site.view->params + j * int64_t(L.row_params());

  kv::AffineParams tensor_p;
  if (L.kind == kv::LayoutKind::kInt && L.tensor) {
    const float* t = site.view->params;
    tensor_p = {t[0], t[1], t[2]};
  } else if (L.kind == kv::LayoutKind::kInt) {
    const int n_sets = L.n_sets(), lane = threadIdx.x % 32;
    for (int s = threadIdx.x / 32; s < n_sets; s += kWarps) {
      const float* x = xs + int64_t(s) * L.set_len;
      float lo = x[0], hi = x[0];
      for (int i = lane; i < L.set_len; i += 32) take(x[i], lo, hi);
      warp_minmax(lo, hi);
      if (lane == 0) {
        const kv::AffineParams p = kv::affine_fit_range(L.bits, L.sym, lo, hi);
        s_scale[s] = p.scale, s_zero[s] = p.zero, s_qscale[s] = p.qscale;
        params[s] = p.scale;
        if (!L.sym) params[n_sets + s] = p.zero;
      }
    }
    __syncthreads();
  } else if (L.kind == kv::LayoutKind::kFp8) {
    float s = L.fp8_scale;
    if (s == 0) {  // dynamic: max|x| / max finite, 1 where that is not a positive finite number
      float lo, hi;
      block_minmax(xs, w, lo, hi);
      s = (-lo < hi ? hi : -lo) / kv::fp8_format(L.e5m2).max_value;
      if (!(s > 0) || !kv::finite(s)) s = 1.0f;
      if (threadIdx.x == 0) params[0] = s;
    }
    if (threadIdx.x == 0) s_fp8 = s;
    __syncthreads();
  } else if (L.kind == kv::LayoutKind::kGgml) {
    const int n_blocks = L.n_sets();
    for (int b = threadIdx.x; b < n_blocks; b += kThreads) {
      const kv::GgmlParams p = kv::ggml_quantize_ref(L.ggml, xs + b * kv::kGgmlBlock, kv::kGgmlBlock,
                                                     codes + b * kv::kGgmlBlock);
      params[b] = p.d;
      if (kv::ggml_has_min(L.ggml)) params[n_blocks + b] = p.m;
    }
    __syncthreads();
  }

  write_words(words, w, L.bits, threadIdx.x, kThreads, [&](int i) -> uint32_t {
    switch (L.kind) {
      case kv::LayoutKind::kPlain: return kv::float_bits(xs[i]);
      case kv::LayoutKind::kBf16: return float_to_bf16(xs[i]);
      case kv::LayoutKind::kInt: {
        if (L.tensor) return kv::affine_quantize(L.bits, L.sym, xs[i], tensor_p);
        const int s = i / L.set_len;
        return kv::affine_quantize(L.bits, L.sym, xs[i], {s_scale[s], s_zero[s], s_qscale[s]});
      }
      case kv::LayoutKind::kFp8: {
        const float s = s_fp8;
        return kv::fp8_encode(s == 1.0f ? xs[i] : xs[i] / s, kv::fp8_format(L.e5m2));
      }
      case kv::LayoutKind::kGgml: return codes[i];
    }
    return 0;
  });
}

__global__ void __launch_bounds__(kThreads) channel_kernel(const SlotKv* __restrict__ slots_kv,
                                                           const SlotRows* __restrict__ rows,
                                                           const float* __restrict__ k_new,
                                                           const float* __restrict__ v_new) {
  pdl_trigger();
  pdl_wait();
  extern __shared__ float sp[];  // [3, width]: stored scale, zero, the scale codes are computed with
  const SlotKv& skv = slots_kv[blockIdx.y];
  if (!skv.write) return;
  const Site site(skv, rows[blockIdx.y], blockIdx.z == 0, k_new, v_new);
  const kv::KvLayout L = site.view->layout;
  if (!L.channel()) return;
  const int64_t j0 = site.q_old + int64_t(blockIdx.x) * L.block_rows;
  if (j0 >= site.q_new) return;
  const int w = L.width, N = L.block_rows;
  float *s_scale = sp, *s_zero = sp + w, *s_qscale = sp + 2 * w;
  float* bp = site.view->params + (j0 / N) * int64_t(L.block_params());
  for (int c = threadIdx.x; c < w; c += kThreads) {
    float lo = site(j0, c), hi = lo;
    for (int r = 1; r < N; ++r) take(site(j0 + r, c), lo, hi);
    const kv::AffineParams p = kv::affine_fit_range(L.bits, L.sym, lo, hi);
    s_scale[c] = p.scale, s_zero[c] = p.zero, s_qscale[c] = p.qscale;
    bp[c] = p.scale;
    if (!L.sym) bp[w + c] = p.zero;
  }
  __syncthreads();
  const int rw = L.row_words();
  for (int r = 0; r < N; ++r) {
    const int64_t j = j0 + r;
    write_words(site.view->words + j * rw, w, L.bits, threadIdx.x, kThreads, [&](int c) -> uint32_t {
      return kv::affine_quantize(L.bits, L.sym, site(j, c), {s_scale[c], s_zero[c], s_qscale[c]});
    });
  }
}

__global__ void __launch_bounds__(kThreads) residual_kernel(const SlotKv* __restrict__ slots_kv,
                                                            const SlotRows* __restrict__ rows,
                                                            const float* __restrict__ k_new,
                                                            const float* __restrict__ v_new) {
  pdl_trigger();
  pdl_wait();
  const SlotKv& skv = slots_kv[blockIdx.y];
  if (!skv.write) return;
  const Site site(skv, rows[blockIdx.y], blockIdx.z == 0, k_new, v_new);
  const kv::KvLayout& L = site.view->layout;
  const int64_t j = site.pos + blockIdx.x;
  if (L.residual == 0 || blockIdx.x >= site.n || j < site.q_new) return;
  uint16_t* ring = site.view->residual + int(j % L.residual) * L.width;
  for (int c = threadIdx.x; c < L.width; c += kThreads) ring[c] = float_to_fp16(site.x_new[blockIdx.x * L.width + c]);
}

}  // namespace

void kv_write_cuda(const SlotKv* slots_kv, const SlotRows* rows, int64_t n_slots, const KvWriteBounds& b,
                   const float* k, const float* v) {
  if (n_slots == 0 || b.new_rows == 0) return;
  const unsigned s = unsigned(n_slots);
  if (b.fit) launch_pdl(fit_tensor_kernel, dim3(s, 2), kThreads, 0, slots_kv, rows, k, v);
  if (b.quantized > 0)
    launch_pdl(row_kernel, dim3(unsigned(b.quantized), s, 2), kThreads, size_t(b.width) * (sizeof(float) + 1), slots_kv,
               rows, k, v, b.rope_wrote);
  if (b.blocks > 0)
    launch_pdl(channel_kernel, dim3(unsigned(b.blocks), s, 2), kThreads, 3 * sizeof(float) * size_t(b.width), slots_kv,
               rows, k, v);
  if (b.ring) launch_pdl(residual_kernel, dim3(unsigned(b.new_rows), s, 2), kThreads, 0, slots_kv, rows, k, v);
}

}  // namespace kvaudit::engine::cuda
