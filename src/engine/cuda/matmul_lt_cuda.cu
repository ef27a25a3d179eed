// y = bf16(x) @ w.T through cuBLASLt (ops_cuda.h, WeightType::kBf16Lt): the activations rounded to
// bf16, as transformers and vLLM multiply them in a bf16 model, products and fp32 sums on Hopper's
// tensor cores in the library's own kernels (the throughput path; kBf16Tc keeps 16 significant bits
// of the activations at twice the tensor-core work).
//
// Batch invariance: every product runs lt_product's algorithm for its shape and exact row count
// (lt_product.h), whose sums along k are those of one reference kernel. k is cut into chunks of
// about lt_chunk_k() columns (lt_k_split), one strided batch of products, and add_chunks_kernel adds
// the chunks' products in order: a fixed split that gives a decode step enough blocks. Products that share x and
// whose weights lie back to back (q/k/v, gate/up: forward_cuda.cc packs them) run as one product.
// lt_products_cuda hands the chunks' products to the kernel that consumes the sum instead (the
// residual add + norm, the gated activation: part_sums.cuh adds them in the same order).
#include <cuda_bf16.h>

#include <algorithm>
#include <string>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/pdl.cuh"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/lt_product.h"
#include "engine/cuda/ops_cuda.h"
#include "engine/cuda/part_sums.cuh"

namespace kvaudit::engine::cuda {
namespace {

using bf16 = __nv_bfloat16;
constexpr int64_t kMaxPartialFloats = int64_t(64) << 20;  // chunk products held at once (rows in passes)
constexpr int kMaxJobs = 3;

__global__ void to_bf16_kernel(const float* __restrict__ x, int64_t count, bf16* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16_rn(x[i]);
}

struct Split {
  float* y[kMaxJobs];
  int64_t m[kMaxJobs];
  int count;
};

// out[t, o] = the sum of the chunks' products at (t, o) (o < m_total), written to the product that
// column o belongs to; V: four columns a thread (split4_ok).
template <bool V>
__global__ void add_chunks_kernel(PartSums p, int64_t rows, int64_t m_total, Split split) {
  pdl_trigger();
  pdl_wait();
  const int64_t o = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * (V ? 4 : 1);
  if (o >= m_total) return;
  int j = 0;
  int64_t oj = o;
  while (j + 1 < split.count && oj >= split.m[j]) oj -= split.m[j++];
  for (int64_t t = blockIdx.y; t < rows; t += gridDim.y) {
    float* y = split.y[j] + t * split.m[j] + oj;
    if constexpr (V) *reinterpret_cast<float4*>(y) = part_sum4(p, t, o);
    else *y = part_sum(p, t, o);
  }
}

__global__ void count_unequal_kernel(const float* __restrict__ a, int64_t a_stride, const float* __restrict__ b,
                                     int64_t b_stride, int64_t m, int64_t ld, unsigned long long* count) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= m) return;
  const int64_t r = blockIdx.y, j = blockIdx.z;
  if (__float_as_uint(a[j * a_stride + r * ld + c]) != __float_as_uint(b[j * b_stride + r * ld + c]))
    atomicAdd(count, 1ull);
}

bool split4_ok(const PartSums& p, const Split& s) {
  for (int j = 0; j < s.count; ++j)
    if (s.m[j] % 4 != 0 || reinterpret_cast<uintptr_t>(s.y[j]) % 16 != 0) return false;
  return sums4_ok(p);
}

unsigned grid_for(int64_t count) { return unsigned(std::clamp<int64_t>((count + 255) / 256, 1, 8192)); }

// The chunk products of x [n, k] and w [m_total, k] in passes of rows, each pass handed to consume
// as parts (ops_cuda.h, PartSums) before the next reuses the scratch. invariant = false: one product
// over the whole k (one part), the algorithm cuBLASLt picks for n rows.
void chunk_products(const bf16* x, int64_t n, int64_t k, const bf16* w, int64_t m_total, bool invariant,
                    const ConsumeParts& consume) {
  static DeviceBuffer<float> part;
  const KSplit cut = invariant ? lt_k_split(k) : KSplit{k, 1, 0};  // (not the q/k/v Split below)
  const int64_t full = cut.full, rest = cut.rest, kc = cut.kc, chunks = full + (rest > 0);
  const int64_t ld = (m_total + 3) / 4 * 4;
  const int64_t pass = std::max<int64_t>(1, kMaxPartialFloats / (chunks * ld));
  for (int64_t t0 = 0; t0 < n; t0 += pass) {
    const int64_t rows = std::min(pass, n - t0);
    part.resize(size_t(chunks * rows * ld));
    const bf16* xt = x + t0 * k;
    if (full > 0) lt_product(w, m_total, xt, rows, k, kc, int(full), part.data(), ld, invariant);
    if (rest > 0)
      lt_product(w + full * kc, m_total, xt + full * kc, rows, k, rest, 1, part.data() + full * rows * ld, ld, true);
    consume(PartSums{part.data(), ld, chunks, rows * ld}, t0, rows);
  }
}

// y_j = x @ w_j.T for products whose weights lie back to back from w (m_total rows in all).
void packed_products(const bf16* x, int64_t n, int64_t k, const bf16* w, int64_t m_total, const Split& split,
                     bool invariant) {
  if ((!invariant || k <= lt_chunk_k()) && split.count == 1 && m_total % 4 == 0) {
    lt_product(w, m_total, x, n, k, k, 1, split.y[0], m_total, invariant);  // one part: no sums to add
    return;
  }
  chunk_products(x, n, k, w, m_total, invariant, [&](const PartSums& p, int64_t t0, int64_t rows) {
    Split s = split;
    for (int j = 0; j < s.count; ++j) s.y[j] += t0 * s.m[j];
    if (split4_ok(p, s))
      launch_pdl(add_chunks_kernel<true>, rows_cols_grid(rows, m_total, 4, 256), 256, 0, p, rows, m_total, s);
    else
      launch_pdl(add_chunks_kernel<false>, rows_cols_grid(rows, m_total, 1, 256), 256, 0, p, rows, m_total, s);
  });
}

void check_k(int64_t k) {
  if (k % 8 != 0) throw_runtime("cuBLASLt products: k = " + std::to_string(k) + " is not a multiple of 8");
}

}  // namespace

void lt_matmul_many_cuda(const float* x, int64_t n, int64_t k, std::span<const MatmulOutput> outs, bool invariant) {
  if (n == 0 || outs.empty()) return;
  static DeviceBuffer<uint16_t> xb;  // scratch shared by every backend of the process
  xb.resize(size_t(n * k));
  to_bf16_cuda(x, n * k, xb.data());
  lt_matmul_many_bf16_cuda(xb.data(), n, k, outs, invariant);
}

void lt_matmul_many_bf16_cuda(const uint16_t* xb, int64_t n, int64_t k, std::span<const MatmulOutput> outs,
                              bool invariant) {
  if (n == 0 || outs.empty()) return;
  check_k(k);
  if (outs.size() > size_t(kMaxJobs)) throw_runtime("lt_matmul_many_cuda: more than 3 products in one launch");
  const bf16* x = reinterpret_cast<const bf16*>(xb);
  // Runs of products whose weights follow each other in memory become one product.
  for (size_t i = 0; i < outs.size();) {
    Split s{};
    const bf16* w = static_cast<const bf16*>(outs[i].w);
    int64_t m_total = 0;
    size_t j = i;
    while (j < outs.size() && static_cast<const bf16*>(outs[j].w) == w + m_total * k) {
      s.y[s.count] = outs[j].y;
      s.m[s.count++] = outs[j].m;
      m_total += outs[j].m;
      ++j;
    }
    packed_products(x, n, k, w, m_total, s, invariant);
    i = j;
  }
}

void lt_products_cuda(const uint16_t* xb, int64_t n, int64_t k, const void* w, int64_t m, bool invariant,
                      const ConsumeParts& consume) {
  if (n == 0 || m == 0) return;
  check_k(k);
  chunk_products(reinterpret_cast<const bf16*>(xb), n, k, static_cast<const bf16*>(w), m, invariant, consume);
}

void lt_gated_cuda(const uint16_t* xb, int64_t n, int64_t k, const void* w, int64_t d_ff, cpu::Activation act,
                   bool invariant, uint16_t* outb) {
  if (n == 0 || d_ff == 0) return;
  check_k(k);
  const int64_t m = 2 * d_ff, ld = (m + 3) / 4 * 4;
  // The single chunk's product as lt_product runs it (chunk_products' geometry): ours, in tiles of
  // 8 gate and 8 up columns, is the one form that can apply the activation itself.
  // KVAUDIT_CUDA_LT_GATED=0: always the product, then the activation's own launch (an A/B switch).
  static const bool fuse = env_flag("KVAUDIT_CUDA_LT_GATED", true);
  if (fuse && invariant && k <= lt_chunk_k()) {
    const std::optional<GemvKernel> g = lt_product_gemv(w, m, xb, n, k, k, 1, ld);
    if (g && gemv_gated_fits(*g, n, k, d_ff)) {
      gemv_gated_bf16_cuda(*g, w, xb, n, k, d_ff, act == cpu::Activation::kSilu, outb);
      return;
    }
  }
  chunk_products(reinterpret_cast<const bf16*>(xb), n, k, static_cast<const bf16*>(w), m, invariant,
                 [&](const PartSums& p, int64_t t0, int64_t rows) {
                   gated_parts_cuda(act, p, p.at_column(8), rows, d_ff, outb + t0 * d_ff, true);
                 });
}

void lt_qkv_rope_cuda(const uint16_t* xb, int64_t n, int64_t k, const void* w, const QkvRope& o, bool invariant) {
  if (n == 0) return;
  check_k(k);
  const int64_t m = int64_t(o.n_heads + 2 * o.n_kv_heads) * o.head_dim, ld = (m + 3) / 4 * 4;
  // As lt_gated_cuda: the single chunk's product as lt_product runs it, where that is our tensor-tile
  // kernel, in the form that applies qkv_rope_cuda itself. KVAUDIT_CUDA_LT_QKV=0: always the product,
  // then qkv_rope_cuda's own launch (an A/B switch).
  static const bool fuse = env_flag("KVAUDIT_CUDA_LT_QKV", true);
  if (fuse && invariant && k <= lt_chunk_k()) {
    const std::optional<GemvKernel> g = lt_product_gemv(w, m, xb, n, k, k, 1, ld);
    if (g && gemv_qkv_rope_fits(*g, n, k, o)) {
      gemv_qkv_rope_bf16_cuda(*g, w, xb, n, k, o);
      return;
    }
  }
  chunk_products(reinterpret_cast<const bf16*>(xb), n, k, static_cast<const bf16*>(w), m, invariant,
                 [&](const PartSums& p, int64_t t0, int64_t rows) {
                   const QkvRope r = o.from_row(t0);
                   qkv_rope_cuda(p, r.bias, r.q, r.n_heads, r.k, r.v, r.n_kv_heads, rows, r.head_dim, r.half, r.cs,
                                 r.store.rows ? &r.store : nullptr);
                 });
}

int64_t count_unequal_cuda(const float* a, int64_t a_stride, const float* b, int64_t b_stride, int batch, int64_t rows,
                           int64_t m, int64_t ld) {
  if (batch == 0 || rows == 0 || m == 0) return 0;
  DeviceBuffer<unsigned long long> count(1);
  KVAUDIT_CUDA_CHECK(cudaMemset(count.data(), 0, sizeof(unsigned long long)));
  const dim3 grid(unsigned((m + 255) / 256), unsigned(rows), unsigned(batch));
  count_unequal_kernel<<<grid, 256, 0, stream()>>>(a, a_stride, b, b_stride, m, ld, count.data());
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
  return int64_t(count.download()[0]);
}

void to_bf16_cuda(const float* x, int64_t count, uint16_t* y) {
  if (count == 0) return;
  to_bf16_kernel<<<grid_for(count), 256, 0, stream()>>>(x, count, reinterpret_cast<bf16*>(y));
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kvaudit::engine::cuda
