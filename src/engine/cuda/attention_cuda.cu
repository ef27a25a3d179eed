// Causal attention with GQA, soft-capping and sliding window on the device (ops_cuda.h,
// cpu::attention_head). One block per (query row, heads of one KV head: as many of the group as
// their scores fit in shared memory, so the keys and values are read once for them): each head's
// scores go to shared memory,
// softmax and the weighted sum of values follow with block reductions in a fixed order. Which
// other rows or sequences share the launch never changes a row's arithmetic. Keys and values are
// read from the sequence's stored rows and dequantized on the way (kv::kv_decode: the values the
// CPU cache's rows() holds); fp32 rows are read directly. A score is one warp's: each lane sums
// its channels, the lanes add in a fixed butterfly (the same sum on every lane).
#include <algorithm>
#include <string>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxHeadsPerBlock = 8;  // query heads of one KV head sharing a block

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

// Head kv_h of a sequence's stored K or V: a row's addressing once per key (kv_row), each channel's
// once per block (kv_channel), so the inner loops only unpack and scale (kv::kv_decode).
struct KvReader {
  kv::KvLayout L;
  kv::KvStore s;
  kv::KvStrides st;
  int c0;  // kv_h * head_dim
  __device__ KvReader(const KvView& v, int kv_h, int d) : L(v.layout), s(v.store()), st(kv::kv_strides(L)), c0(kv_h * d) {}
  __device__ bool plain() const { return L.kind == kv::LayoutKind::kPlain; }
  __device__ const float* plain_row(int64_t j) const { return reinterpret_cast<const float*>(s.words + j * L.width) + c0; }
  __device__ kv::KvChannel channel(int c) const { return kv::kv_channel(L, c0 + c); }
  __device__ kv::KvRow row(int64_t j) const { return kv::kv_row(L, st, s, j); }
  __device__ float operator()(const kv::KvRow& r, int c, const kv::KvChannel& ch) const {
    return kv::kv_row_value(L, r, c0 + c, ch);
  }
};

// Block (r, y): query row r and the HPB heads y·HPB .. y·HPB+HPB-1, which share one KV head (HPB
// divides n_heads / n_kv_heads), so each key and value is read once for all of them. Every head's
// arithmetic is what a block of its own would do (the same lanes, butterflies, reductions and key
// order), so HPB never changes a bit. HPB is a template argument so that the per-head registers are
// exactly HPB wide (occupancy: the kernel is latency-bound).
template <int HPB>
__global__ void __launch_bounds__(kThreads, 3) attention_kernel(cpu::AttentionParams p, int64_t max_keys,
                                                             const float* __restrict__ q,
                                                             const AttnRow* __restrict__ rows,
                                                             const SlotKv* __restrict__ slots_kv, float* __restrict__ out) {
  extern __shared__ float smem[];
  const int d = p.head_dim;
  const int groups = kThreads >= d ? kThreads / d : 1;  // key groups of the weighted sum
  float* qs = smem;                    // [HPB][head_dim]
  float* part = qs + HPB * d;          // [kThreads] reduction scratch
  float* acc = part + kThreads;        // [HPB][groups * head_dim] per-group partial outputs
  auto* kch = reinterpret_cast<kv::KvChannel*>(acc + HPB * groups * d);  // [head_dim] the key head's channels
  float* sc = reinterpret_cast<float*>(kch + d);  // [HPB][max_keys] scores, then probabilities
  const int64_t r = blockIdx.x;
  const int h0 = int(blockIdx.y) * HPB;
  const AttnRow row = rows[r];
  const int64_t q_stride = int64_t(p.n_heads) * d;
  const int kv_h = h0 / (p.n_heads / p.n_kv_heads);  // repeat_kv
  const int64_t j0 = p.window > 0 ? max(int64_t(0), row.pos - p.window + 1) : 0;
  const int64_t n = row.pos + 1 - j0;
  const KvReader k(slots_kv[row.slot].k, kv_h, d), v(slots_kv[row.slot].v, kv_h, d);

  for (int e = threadIdx.x; e < HPB * d; e += kThreads) qs[e] = q[r * q_stride + int64_t(h0) * d + e];
  for (int c = threadIdx.x; c < d; c += kThreads) kch[c] = k.channel(c);
  __syncthreads();
  // (q @ k.T) * scaling, then tanh(s / cap) * cap: one warp per key, its lanes over the channels
  // (coalesced reads of the key's row), the lanes' partial sums added in a fixed butterfly.
  // A warp takes kUnroll keys at a time, so that their rows' loads are in flight together.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  constexpr int kWarps = kThreads / 32, kUnroll = 4;
  float mx[HPB];
#pragma unroll
  for (int g = 0; g < HPB; ++g) mx[g] = -INFINITY;
  for (int64_t j = warp; j < n; j += kUnroll * kWarps) {
    float s[kUnroll][HPB];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t jj = j + u * kWarps;
#pragma unroll
      for (int g = 0; g < HPB; ++g) s[u][g] = 0.0f;
      if (jj >= n) continue;
      if (k.plain()) {
        const float* kj = k.plain_row(j0 + jj);
        for (int c = lane; c < d; c += 32) {
          const float kv = kj[c];
#pragma unroll
          for (int g = 0; g < HPB; ++g) s[u][g] = fmaf(qs[g * d + c], kv, s[u][g]);
        }
        continue;
      }
      const kv::KvRow kr = k.row(j0 + jj);
      for (int c = lane; c < d; c += 32) {
        const float kv = k(kr, c, kch[c]);
#pragma unroll
        for (int g = 0; g < HPB; ++g) s[u][g] = fmaf(qs[g * d + c], kv, s[u][g]);
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o /= 2)
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int g = 0; g < HPB; ++g) s[u][g] = __fadd_rn(s[u][g], __shfl_xor_sync(0xffffffffu, s[u][g], o));
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t jj = j + u * kWarps;
      if (jj >= n) break;
#pragma unroll
      for (int g = 0; g < HPB; ++g) {
        float x = __fmul_rn(s[u][g], p.scale);
        if (p.softcap > 0) x = __fmul_rn(p.softcap, tanhf(__fdiv_rn(x, p.softcap)));
        if (lane == 0) sc[g * max_keys + jj] = x;
        mx[g] = fmaxf(mx[g], x);
      }
    }
  }
  // softmax per head: exp(x - max) / sum
#pragma unroll
  for (int g = 0; g < HPB; ++g) {
    const float m = block_reduce<true>(mx[g], part);
    float* scg = sc + g * max_keys;
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < n; j += kThreads) {
      const float e = expf(__fsub_rn(scg[j], m));
      scg[j] = e;
      sum = __fadd_rn(sum, e);
    }
    sum = block_reduce<false>(sum, part);
    for (int64_t j = threadIdx.x; j < n; j += kThreads) scg[j] = __fdiv_rn(scg[j], sum);
  }
  __syncthreads();
  // attn_weights @ v: group grp sums keys grp, grp + groups, ... for each channel; groups add in order.
  for (int e = threadIdx.x; e < groups * d; e += kThreads) {
    const int c = e % d, grp = e / d;
    float a[HPB];
#pragma unroll
    for (int g = 0; g < HPB; ++g) a[g] = 0.0f;
    int64_t j = grp;
    const kv::KvChannel vch = v.channel(c);
    // kPvUnroll values loaded (in flight together: a batch of few rows is latency-bound), then added
    // in key order
    constexpr int kPvUnroll = HPB <= 2 ? 8 : 4;  // more heads, more registers per value
    for (; j + (kPvUnroll - 1) * groups < n; j += kPvUnroll * groups) {
      float vals[kPvUnroll];
#pragma unroll
      for (int u = 0; u < kPvUnroll; ++u) {
        const int64_t jj = j0 + j + u * groups;
        vals[u] = v.plain() ? v.plain_row(jj)[c] : v(v.row(jj), c, vch);
      }
#pragma unroll
      for (int u = 0; u < kPvUnroll; ++u)
#pragma unroll
        for (int g = 0; g < HPB; ++g) a[g] = fmaf(sc[g * max_keys + j + u * groups], vals[u], a[g]);
    }
    for (; j < n; j += groups) {
      const float val = v.plain() ? v.plain_row(j0 + j)[c] : v(v.row(j0 + j), c, vch);
#pragma unroll
      for (int g = 0; g < HPB; ++g) a[g] = fmaf(sc[g * max_keys + j], val, a[g]);
    }
#pragma unroll
    for (int g = 0; g < HPB; ++g) acc[g * groups * d + e] = a[g];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < HPB * d; e += kThreads) {
    const int g = e / d, c = e % d;
    const float* ag = acc + g * groups * d;
    float o = ag[c];
    for (int grp = 1; grp < groups; ++grp) o = __fadd_rn(o, ag[grp * d + c]);
    out[r * q_stride + int64_t(h0 + g) * d + c] = o;
  }
}

template <int HPB>
void launch(const cpu::AttentionParams& p, int64_t max_keys, size_t smem, const float* q, const AttnRow* rows,
            const SlotKv* slots_kv, int64_t n_rows, float* out) {
  if (smem > 48 * 1024)
    KVAUDIT_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<HPB>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  attention_kernel<HPB><<<dim3(unsigned(n_rows), unsigned(p.n_heads / HPB)), kThreads, smem>>>(p, max_keys, q, rows,
                                                                                             slots_kv, out);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void attention_cuda(const cpu::AttentionParams& p, const float* q, const AttnRow* rows, const SlotKv* slots_kv,
                    int64_t n_rows, int64_t max_pos, float* out) {
  if (n_rows == 0) return;
  const int d = p.head_dim;
  const int groups = kThreads >= d ? kThreads / d : 1;
  const int64_t max_keys = p.window > 0 ? std::min<int64_t>(max_pos + 1, p.window) : max_pos + 1;
  static int smem_optin = -1, sms = 0;  // the device's per-block limit and SM count, read once
  if (smem_optin < 0) {
    int dev = 0;
    KVAUDIT_CUDA_CHECK(cudaGetDevice(&dev));
    KVAUDIT_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    KVAUDIT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  }
  auto smem_for = [&](int hpb) {
    return sizeof(float) * size_t(hpb * d + kThreads + hpb * groups * d + hpb * max_keys) + sizeof(kv::KvChannel) * size_t(d);
  };
  // The most heads of one KV head per block (a divisor of the group) whose scores fit, while the
  // blocks still fill the device four times over (a batch-1 decode keeps a block per head).
  const int group = p.n_heads / p.n_kv_heads;
  int hpb = 1;
  for (int h = std::min(group, kMaxHeadsPerBlock); h > 1; --h)
    if (group % h == 0 && smem_for(h) <= size_t(smem_optin) && n_rows * (p.n_heads / h) >= 4 * int64_t(sms)) {
      hpb = h;
      break;
    }
  const size_t smem = smem_for(hpb);
  if (smem > size_t(smem_optin))
    throw_runtime("CUDA attention: " + std::to_string(max_keys) + " visible keys need " + std::to_string(smem) +
                  " bytes of shared memory, over the device's " + std::to_string(smem_optin));
  switch (hpb) {
    case 1: return launch<1>(p, max_keys, smem, q, rows, slots_kv, n_rows, out);
    case 2: return launch<2>(p, max_keys, smem, q, rows, slots_kv, n_rows, out);
    case 3: return launch<3>(p, max_keys, smem, q, rows, slots_kv, n_rows, out);
    case 4: return launch<4>(p, max_keys, smem, q, rows, slots_kv, n_rows, out);
    case 5: return launch<5>(p, max_keys, smem, q, rows, slots_kv, n_rows, out);
    case 6: return launch<6>(p, max_keys, smem, q, rows, slots_kv, n_rows, out);
    case 7: return launch<7>(p, max_keys, smem, q, rows, slots_kv, n_rows, out);
    default: return launch<8>(p, max_keys, smem, q, rows, slots_kv, n_rows, out);
  }
}

}  // namespace kvaudit::engine::cuda
