// y = bf16(x) @ w.T through cuBLASLt (ops_cuda.h, WeightType::kBf16Lt): the activations rounded to
// bf16, as transformers and vLLM multiply them in a bf16 model, products and fp32 sums on Hopper's
// tensor cores in the library's own kernels (the throughput path; kBf16Tc keeps 16 significant bits
// of the activations at twice the tensor-core work).
//
// Batch invariance. Left to itself cuBLASLt picks a kernel per problem size, split-K ones for few
// rows, so a row's bits would depend on its batch. Here each (m, k chunk, chunk count) gets ONE
// algorithm, chosen once from the heuristic for kProbeRows rows with no split-K reduction allowed
// (CUBLASLT_REDUCTION_SCHEME_NONE: each dot product in one sequence), and that algorithm runs for
// every n; the kernel's order of sums along k is then fixed by k, and n only changes the grid
// (tests/cuda checks rows alone against rows in batches of several sizes). k is cut into chunks of
// chunk_k() columns, one strided batch of products, and add_chunks_kernel adds the chunks' products in
// order: a fixed split that gives a decode step enough blocks. Products that share x and whose
// weights lie back to back (q/k/v, gate/up: forward_cuda.cc packs them) run as one product.
// lt_products_cuda hands the chunks' products to the kernel that consumes the sum instead (the
// residual add + norm, the gated activation: part_sums.cuh adds them in the same order).
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "engine/cuda/cublaslt.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/ops_cuda.h"
#include "engine/cuda/part_sums.cuh"

namespace kvaudit::engine::cuda {
namespace {

using bf16 = __nv_bfloat16;
// k per chunk product (the last may be shorter): 4096, or KVAUDIT_CUDA_LT_CHUNK (a multiple of 64),
// read once per process: the split is fixed by k alone within a run, so invariance holds at any value.
// 4096 (docs/PERFORMANCE.md, 8B shapes on an H200, 1024 to 16384): the products of k <= 4096 (q/k/v,
// o, gate/up of 7-8B models) are one part, no fp32 partials written and read back; down's 14336 is
// four, which still gives a batch-1 step blocks enough (one part there: 2.4x slower at batch 1).
int64_t chunk_k() {
  static const int64_t chunk = [] {
    const char* env = std::getenv("KVAUDIT_CUDA_LT_CHUNK");
    if (env == nullptr || *env == '\0') return int64_t(4096);
    char* end = nullptr;
    const long long v = std::strtoll(env, &end, 10);
    if (end == env || *end != '\0' || v < 64 || v % 64 != 0)
      throw_usage(std::string("KVAUDIT_CUDA_LT_CHUNK: '") + env + "' is not a positive multiple of 64");
    return int64_t(v);
  }();
  return chunk;
}
constexpr int64_t kProbeRows = 64;                       // the n each algorithm is chosen for
constexpr int64_t kMaxPartialFloats = int64_t(64) << 20;  // chunk products held at once (rows in passes)
constexpr size_t kWorkspaceBytes = size_t(32) << 20;
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

bool split4_ok(const PartSums& p, const Split& s) {
  for (int j = 0; j < s.count; ++j)
    if (s.m[j] % 4 != 0 || reinterpret_cast<uintptr_t>(s.y[j]) % 16 != 0) return false;
  return sums4_ok(p);
}

unsigned grid_for(int64_t count) { return unsigned(std::clamp<int64_t>((count + 255) / 256, 1, 8192)); }

class Lt {
 public:
  Lt() : api_(cublaslt()) {
    check_lt(api_.create(&handle_), "create");
    check_lt(api_.desc_create(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul descriptor");
    const cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
    check_lt(api_.desc_set(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t), "TRANSA");
    check_lt(api_.desc_set(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof n), "TRANSB");
    workspace_.resize(kWorkspaceBytes);
  }

  // d = x @ w.T over the first kc columns of w [m, k] and x [rows, k], and of each of the next
  // batch - 1 chunks of kc columns; d: [batch][rows][m] (cuBLASLt's column-major D [m, rows]).
  // d's rows are ld >= m apart (a multiple of 4: 16-byte aligned rows).
  // invariant = false: the algorithm chosen for this row count, split-K allowed (not batch invariant).
  void product(const bf16* w, int64_t m, const bf16* x, int64_t rows, int64_t k, int64_t kc, int batch, float* d,
               int64_t ld, bool invariant = true) {
    const cublasLtMatmulAlgo_t& algo = algo_for(m, k, kc, batch, ld, invariant ? kProbeRows : rows);
    const Layouts& l = layouts_for(m, rows, k, kc, batch, ld);
    const float alpha = 1.0f, beta = 0.0f;
    check_lt(api_.matmul(handle_, desc_, &alpha, w, l.a, x, l.b, &beta, d, l.d, d, l.d, &algo, workspace_.data(),
                         kWorkspaceBytes, 0),
             "matmul");
  }

 private:
  // Layouts of one call: A = w as [kc, m] column-major (ld k), B = x as [kc, rows] (ld k), D [m, rows] (ld).
  struct Layouts {
    const CublasLt& api;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    Layouts(const CublasLt& f, int64_t m, int64_t rows, int64_t k, int64_t kc, int batch, int64_t ld) : api(f) {
      check_lt(api.layout_create(&a, CUDA_R_16BF, uint64_t(kc), uint64_t(m), k), "layout A");
      check_lt(api.layout_create(&b, CUDA_R_16BF, uint64_t(kc), uint64_t(rows), k), "layout B");
      check_lt(api.layout_create(&d, CUDA_R_32F, uint64_t(m), uint64_t(rows), ld), "layout D");
      if (batch > 1) {
        const int64_t sd = ld * rows;
        for (auto [layout, stride] : {std::pair{a, kc}, std::pair{b, kc}, std::pair{d, sd}}) {
          check_lt(api.layout_set(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch), "batch count");
          check_lt(api.layout_set(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride),
                   "batch stride");
        }
      }
    }
    ~Layouts() {
      for (cublasLtMatrixLayout_t l : {a, b, d})
        if (l) api.layout_destroy(l);
    }
  };

  // A decode step repeats the same few shapes every layer: their layouts are made once (a bounded
  // cache: a long run of varying row counts starts it afresh).
  const Layouts& layouts_for(int64_t m, int64_t rows, int64_t k, int64_t kc, int batch, int64_t ld) {
    const auto key = std::make_tuple(m, rows, k, kc, batch, ld);
    auto it = layouts_.find(key);
    if (it != layouts_.end()) return *it->second;
    if (layouts_.size() >= kMaxLayouts) layouts_.clear();
    return *layouts_.emplace(key, std::make_unique<Layouts>(api_, m, rows, k, kc, batch, ld)).first->second;
  }

  // probe_rows: the n the heuristic is asked about; kProbeRows with no split-K reduction (the
  // invariant products), else the call's own row count with any reduction.
  const cublasLtMatmulAlgo_t& algo_for(int64_t m, int64_t k, int64_t kc, int batch, int64_t ld, int64_t probe_rows) {
    const auto key = std::make_tuple(m, k, kc, batch, ld, probe_rows);
    auto it = algos_.find(key);
    if (it != algos_.end()) return it->second;
    cublasLtMatmulPreference_t pref = nullptr;
    check_lt(api_.pref_create(&pref), "preference");
    const uint64_t ws = kWorkspaceBytes;
    const uint32_t none = CUBLASLT_REDUCTION_SCHEME_NONE;
    // Row starts of a pass and the chunks' offsets are only 16-byte aligned (k, m multiples of 8).
    const uint32_t align = 16;
    check_lt(api_.pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws), "workspace");
    if (probe_rows == kProbeRows)
      check_lt(api_.pref_set(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &none, sizeof none), "reduction");
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      check_lt(api_.pref_set(pref, attr, &align, sizeof align), "alignment");
    Layouts l(api_, m, probe_rows, k, kc, batch, ld);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t st = api_.heuristic(handle_, desc_, l.a, l.b, l.d, l.d, pref, 1, &result, &found);
    api_.pref_destroy(pref);
    check_lt(st, "heuristic");
    if (algos_.size() >= kMaxLayouts) algos_.clear();
    if (found == 0)
      throw_runtime("cuBLASLt: no algorithm for a " + std::to_string(m) + " x " + std::to_string(kc) +
                    " bf16 product without split-K");
    return algos_.emplace(key, result.algo).first->second;
  }

  const CublasLt& api_;
  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  DeviceBuffer<uint8_t> workspace_;
  std::map<std::tuple<int64_t, int64_t, int64_t, int, int64_t, int64_t>, cublasLtMatmulAlgo_t> algos_;
  static constexpr size_t kMaxLayouts = 4096;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int, int64_t>, std::unique_ptr<Layouts>> layouts_;
};

Lt& lt() {
  static Lt l;  // one host thread, the default stream (as every op here)
  return l;
}

// The chunk products of x [n, k] and w [m_total, k] in passes of rows, each pass handed to consume
// as parts (ops_cuda.h, PartSums) before the next reuses the scratch. invariant = false: one product
// over the whole k (one part), the algorithm cuBLASLt picks for n rows.
void chunk_products(const bf16* x, int64_t n, int64_t k, const bf16* w, int64_t m_total, bool invariant,
                    const ConsumeParts& consume) {
  static DeviceBuffer<float> part;
  const int64_t chunk = chunk_k();
  const int64_t full = invariant ? k / chunk : 1, rest = invariant ? k % chunk : 0, chunks = full + (rest > 0);
  const int64_t kc = invariant ? std::min(k, chunk) : k;
  const int64_t ld = (m_total + 3) / 4 * 4;
  const int64_t pass = std::max<int64_t>(1, kMaxPartialFloats / (chunks * ld));
  for (int64_t t0 = 0; t0 < n; t0 += pass) {
    const int64_t rows = std::min(pass, n - t0);
    part.resize(size_t(chunks * rows * ld));
    const bf16* xt = x + t0 * k;
    if (full > 0) lt().product(w, m_total, xt, rows, k, kc, int(full), part.data(), ld, invariant);
    if (rest > 0)
      lt().product(w + full * chunk, m_total, xt + full * chunk, rows, k, rest, 1, part.data() + full * rows * ld, ld);
    consume(PartSums{part.data(), ld, chunks, rows * ld}, t0, rows);
  }
}

// y_j = x @ w_j.T for products whose weights lie back to back from w (m_total rows in all).
void packed_products(const bf16* x, int64_t n, int64_t k, const bf16* w, int64_t m_total, const Split& split,
                     bool invariant) {
  if ((!invariant || k <= chunk_k()) && split.count == 1 && m_total % 4 == 0) {
    lt().product(w, m_total, x, n, k, k, 1, split.y[0], m_total, invariant);  // one part: no sums to add
    return;
  }
  chunk_products(x, n, k, w, m_total, invariant, [&](const PartSums& p, int64_t t0, int64_t rows) {
    Split s = split;
    for (int j = 0; j < s.count; ++j) s.y[j] += t0 * s.m[j];
    if (split4_ok(p, s))
      add_chunks_kernel<true><<<rows_cols_grid(rows, m_total, 4, 256), 256>>>(p, rows, m_total, s);
    else
      add_chunks_kernel<false><<<rows_cols_grid(rows, m_total, 1, 256), 256>>>(p, rows, m_total, s);
    KVAUDIT_CUDA_CHECK(cudaGetLastError());
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

void to_bf16_cuda(const float* x, int64_t count, uint16_t* y) {
  if (count == 0) return;
  to_bf16_kernel<<<grid_for(count), 256>>>(x, count, reinterpret_cast<bf16*>(y));
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kvaudit::engine::cuda
