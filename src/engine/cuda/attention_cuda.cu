// Causal attention with GQA, soft-capping and sliding window on the device (ops_cuda.h,
// cpu::attention_head). One block per (query row, head): the row's scores go to shared memory,
// softmax and the weighted sum of values follow with block reductions in a fixed order. Which
// other rows or sequences share the launch never changes a row's arithmetic. Keys and values are
// read from the sequence's stored rows and dequantized on the way (kv::kv_value: the values the
// CPU cache's rows() holds); fp32 rows are read directly. A score is one warp's: each lane sums
// its channels, the lanes add in a fixed butterfly (the same sum on every lane).
#include <algorithm>
#include <string>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 128;

// Reduces part[0..kThreads) in a fixed tree; every thread returns the result.
template <bool kMax>
__device__ float block_reduce(float v, float* part) {
  part[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (int(threadIdx.x) < s)
      part[threadIdx.x] = kMax ? fmaxf(part[threadIdx.x], part[threadIdx.x + s]) : part[threadIdx.x] + part[threadIdx.x + s];
    __syncthreads();
  }
  const float r = part[0];
  __syncthreads();
  return r;
}

// Value c (0..head_dim) of head kv_h of stored row j.
struct KvReader {
  KvView view;
  int c0;  // kv_h * head_dim
  __device__ KvReader(const KvView& v, int kv_h, int d) : view(v), c0(kv_h * d) {}
  __device__ bool plain() const { return view.layout.kind == kv::LayoutKind::kPlain; }
  __device__ const float* plain_row(int64_t j) const {
    return reinterpret_cast<const float*>(view.words + j * view.layout.width) + c0;
  }
  __device__ float operator()(int64_t j, int c) const { return kv::kv_stored_value(view.layout, view.store(), j, c0 + c); }
};

__global__ void __launch_bounds__(kThreads) attention_kernel(cpu::AttentionParams p, const float* __restrict__ q,
                                                             const AttnRow* __restrict__ rows,
                                                             const SlotKv* __restrict__ slots_kv, float* __restrict__ out) {
  extern __shared__ float smem[];
  const int d = p.head_dim;
  const int groups = kThreads >= d ? kThreads / d : 1;  // key groups of the weighted sum
  float* qs = smem;                    // [head_dim]
  float* part = qs + d;                // [kThreads] reduction scratch
  float* acc = part + kThreads;        // [groups * head_dim] per-group partial outputs
  float* sc = acc + groups * d;        // [visible keys] scores, then probabilities
  const int64_t r = blockIdx.x;
  const int h = int(blockIdx.y);
  const AttnRow row = rows[r];
  const int64_t q_stride = int64_t(p.n_heads) * d;
  const int kv_h = h / (p.n_heads / p.n_kv_heads);  // repeat_kv
  const int64_t j0 = p.window > 0 ? max(int64_t(0), row.pos - p.window + 1) : 0;
  const int64_t n = row.pos + 1 - j0;
  const KvReader k(slots_kv[row.slot].k, kv_h, d), v(slots_kv[row.slot].v, kv_h, d);

  for (int c = threadIdx.x; c < d; c += kThreads) qs[c] = q[r * q_stride + int64_t(h) * d + c];
  __syncthreads();
  // (q @ k.T) * scaling, then tanh(s / cap) * cap: one warp per key, its lanes over the channels
  // (coalesced reads of the key's row), the lanes' partial sums added in a fixed butterfly.
  // A warp takes kUnroll keys at a time, so that their rows' loads are in flight together.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  constexpr int kWarps = kThreads / 32, kUnroll = 4;
  float mx = -INFINITY;
  for (int64_t j = warp; j < n; j += kUnroll * kWarps) {
    float s[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t jj = j + u * kWarps;
      s[u] = 0.0f;
      if (jj >= n) continue;
      if (k.plain()) {
        const float* kj = k.plain_row(j0 + jj);
        for (int c = lane; c < d; c += 32) s[u] = fmaf(qs[c], kj[c], s[u]);
      } else {
        for (int c = lane; c < d; c += 32) s[u] = fmaf(qs[c], k(j0 + jj, c), s[u]);
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o /= 2)
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) s[u] = __fadd_rn(s[u], __shfl_xor_sync(0xffffffffu, s[u], o));
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t jj = j + u * kWarps;
      if (jj >= n) break;
      float v = __fmul_rn(s[u], p.scale);
      if (p.softcap > 0) v = __fmul_rn(p.softcap, tanhf(__fdiv_rn(v, p.softcap)));
      if (lane == 0) sc[jj] = v;
      mx = fmaxf(mx, v);
    }
  }
  mx = block_reduce<true>(mx, part);
  // softmax: exp(x - max) / sum
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) {
    const float e = expf(__fsub_rn(sc[j], mx));
    sc[j] = e;
    sum = __fadd_rn(sum, e);
  }
  sum = block_reduce<false>(sum, part);
  for (int64_t j = threadIdx.x; j < n; j += kThreads) sc[j] = __fdiv_rn(sc[j], sum);
  __syncthreads();
  // attn_weights @ v: group g sums keys g, g + groups, ... for each channel; groups add in order.
  for (int e = threadIdx.x; e < groups * d; e += kThreads) {
    const int c = e % d, g = e / d;
    float a = 0.0f;
    if (v.plain()) {  // kUnroll values loaded, then added in key order
      int64_t j = g;
      for (; j + (kUnroll - 1) * groups < n; j += kUnroll * groups) {
        float vals[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) vals[u] = v.plain_row(j0 + j + u * groups)[c];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) a = fmaf(sc[j + u * groups], vals[u], a);
      }
      for (; j < n; j += groups) a = fmaf(sc[j], v.plain_row(j0 + j)[c], a);
    } else {
      for (int64_t j = g; j < n; j += groups) a = fmaf(sc[j], v(j0 + j, c), a);
    }
    acc[e] = a;
  }
  __syncthreads();
  for (int c = threadIdx.x; c < d; c += kThreads) {
    float o = acc[c];
    for (int g = 1; g < groups; ++g) o = __fadd_rn(o, acc[g * d + c]);
    out[r * q_stride + int64_t(h) * d + c] = o;
  }
}

}  // namespace

void attention_cuda(const cpu::AttentionParams& p, const float* q, const AttnRow* rows, const SlotKv* slots_kv,
                    int64_t n_rows, int64_t max_pos, float* out) {
  if (n_rows == 0) return;
  const int d = p.head_dim;
  const int groups = kThreads >= d ? kThreads / d : 1;
  const int64_t max_keys = p.window > 0 ? std::min<int64_t>(max_pos + 1, p.window) : max_pos + 1;
  const size_t smem = sizeof(float) * size_t(d + kThreads + groups * d + max_keys);
  static int smem_optin = -1;  // the device's per-block limit, read once
  if (smem_optin < 0) {
    int dev = 0;
    KVAUDIT_CUDA_CHECK(cudaGetDevice(&dev));
    KVAUDIT_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  }
  if (smem > size_t(smem_optin))
    throw_runtime("CUDA attention: " + std::to_string(max_keys) + " visible keys need " + std::to_string(smem) +
                  " bytes of shared memory, over the device's " + std::to_string(smem_optin));
  if (smem > 48 * 1024)
    KVAUDIT_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  attention_kernel<<<dim3(unsigned(n_rows), unsigned(p.n_heads)), kThreads, smem>>>(p, q, rows, slots_kv, out);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kvaudit::engine::cuda
