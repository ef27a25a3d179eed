// Quantize-on-write of the KV cache (ops_cuda.h kv_write_cuda): one block per (new row, sequence,
// role). The parameters come first (a set's min/max by warp, then kv::affine_fit_range; the fp8
// row scale; the tensor triple over all of the call's rows), then each thread builds whole 32-bit
// words of the packed row from the kv/layout.h formulas the CPU quantizers use. min and max are
// exact in any order, so the parameters are the CPU's bits.
#include <cfloat>

#include "engine/cuda/cuda_check.h"
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

__global__ void __launch_bounds__(kThreads) kv_write_kernel(const SlotKv* __restrict__ slots_kv,
                                                            const SlotRows* __restrict__ rows,
                                                            const float* __restrict__ k_new,
                                                            const float* __restrict__ v_new) {
  __shared__ float s_scale[kMaxKvSets], s_zero[kMaxKvSets], s_qscale[kMaxKvSets];
  __shared__ float s_fp8;
  const int64_t t = blockIdx.x;
  const SlotKv& skv = slots_kv[blockIdx.y];
  const SlotRows r = rows[blockIdx.y];
  if (!skv.write || t >= r.n) return;
  const bool keys = blockIdx.z == 0;
  const KvView& view = keys ? skv.k : skv.v;
  const kv::KvLayout L = view.layout;
  const int w = L.width;
  const float* x_all = (keys ? k_new : v_new) + r.off * w;  // this sequence's new rows [n, w]
  const float* x = x_all + t * w;
  uint32_t* words = view.words + (r.pos + t) * int64_t(L.row_words());
  float* params = view.params + (r.pos + t) * int64_t(L.row_params());

  kv::AffineParams tensor_p;
  if (L.kind == kv::LayoutKind::kInt && L.tensor) {
    if (keys ? skv.fit_k : skv.fit_v) {  // the sequence's first rows: (s, z) over all of them
      float lo, hi;
      block_minmax(x_all, r.n * w, lo, hi);
      tensor_p = kv::affine_fit_range(L.bits, L.sym, lo, hi);
      if (t == 0 && threadIdx.x == 0)
        view.params[0] = tensor_p.scale, view.params[1] = tensor_p.zero, view.params[2] = tensor_p.qscale;
    } else {
      tensor_p = {view.params[0], view.params[1], view.params[2]};
    }
  } else if (L.kind == kv::LayoutKind::kInt) {
    const int n_sets = L.n_sets(), lane = threadIdx.x % 32;
    for (int s = threadIdx.x / 32; s < n_sets; s += kWarps) {
      const float* xs = x + int64_t(s) * L.set_len;
      float lo = xs[0], hi = xs[0];
      for (int i = lane; i < L.set_len; i += 32) take(xs[i], lo, hi);
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
      block_minmax(x, w, lo, hi);
      s = (-lo < hi ? hi : -lo) / kv::fp8_format(L.e5m2).max_value;
      if (!(s > 0) || !kv::finite(s)) s = 1.0f;
      if (threadIdx.x == 0) params[0] = s;
    }
    if (threadIdx.x == 0) s_fp8 = s;
    __syncthreads();
  }

  const int bits = L.bits;
  const int n_words = L.row_words();
  for (int wd = threadIdx.x; wd < n_words; wd += kThreads) {
    const int64_t b0 = int64_t(wd) * 32;
    const int i0 = int(b0 / bits), i1 = min(w - 1, int((b0 + 31) / bits));
    uint32_t word = 0;
    for (int i = i0; i <= i1; ++i) {
      uint32_t code = 0;
      switch (L.kind) {
        case kv::LayoutKind::kPlain: code = kv::float_bits(x[i]); break;
        case kv::LayoutKind::kBf16: code = kv::bf16_bits(x[i]); break;
        case kv::LayoutKind::kInt: {
          if (L.tensor) {
            code = kv::affine_quantize(bits, L.sym, x[i], tensor_p);
          } else {
            const int s = i / L.set_len;
            code = kv::affine_quantize(bits, L.sym, x[i], {s_scale[s], s_zero[s], s_qscale[s]});
          }
          break;
        }
        case kv::LayoutKind::kFp8: {
          const float s = s_fp8;
          code = kv::fp8_encode(s == 1.0f ? x[i] : x[i] / s, kv::fp8_format(L.e5m2));
          break;
        }
      }
      const int64_t sh = int64_t(i) * bits - b0;  // negative: the code began in the previous word
      word |= sh >= 0 ? code << sh : code >> -sh;
    }
    words[wd] = word;
  }
}

}  // namespace

void kv_write_cuda(const SlotKv* slots_kv, const SlotRows* rows, int64_t n_slots, int64_t max_n, const float* k,
                   const float* v) {
  if (n_slots == 0 || max_n == 0) return;
  kv_write_kernel<<<dim3(unsigned(max_n), unsigned(n_slots), 2), kThreads>>>(slots_kv, rows, k, v);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kvaudit::engine::cuda
