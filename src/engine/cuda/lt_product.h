// One cuBLASLt product d = x @ w.T in bf16 with fp32 sums (matmul_lt_cuda.cu builds the layer's
// products from it), and the choice of its kernel: the only place that talks to cuBLASLt's matmul.
//
// Batch invariance. Left to itself cuBLASLt picks a kernel per problem size, split-K ones for few
// rows, so a row's bits would depend on its batch. Each (m, k chunk, chunk count) has a reference
// algorithm, the heuristic's first for 64 rows with no split-K reduction allowed
// (CUBLASLT_REDUCTION_SCHEME_NONE), and the ANCHOR is that algorithm run on 64 rows: it defines every
// row's bits. A product of n rows runs in slices of at most 1,024 rows, and each slice's row count
// n runs an algorithm ADMITTED for exactly that geometry: the heuristic's first no-split-K
// candidates for n rows and the reference at n rows, each tried on a probe (the call's own weights,
// deterministic inputs) and admitted when all its n x m outputs are the anchor's bit for bit; above
// 64 rows the first admitted runs, up to 64 rows the fastest admitted on the probe (the reference's
// tiles, chosen for 64 rows, can leave SMs idle on a decode step's few); where none is admitted, the
// anchor itself over 64-row passes. Up to 16 rows our own streaming
// kernels (gemv_bf16_cuda: both operand orders, several pipeline depths) are tried the same way and replace that choice where
// they give the anchor's bits and run faster on the probe. Measured on an H200 (docs/
// PERFORMANCE.md), some kernels compute the anchor's bits at one geometry and others at another
// (their schedule along k depends on the problem's size), so nothing is assumed across geometries:
// a geometry runs only what was checked at it. A kernel is deterministic at a given geometry and
// its rows are independent, so the check on the probe holds for every input.
#pragma once
#include <cstdint>
#include <optional>
#include <span>

namespace kvaudit::engine::cuda {

struct QkvRope;  // ops_cuda.h

// k per chunk product (the last may be shorter): 4096, or KVAUDIT_CUDA_LT_CHUNK (a multiple of 64).
int64_t lt_chunk_k();

// How a product's k is cut: `full` chunks of kc columns, then one of `rest` columns (0: none). The
// chunk count is ceil(k / lt_chunk_k()); where k divides into that many equal chunks of a multiple
// of 64 columns, they are equal (one strided launch, no short last chunk left with few blocks:
// the 8B's down, 14,336 = 4 x 3,584); else chunks of lt_chunk_k() and the rest.
// KVAUDIT_CUDA_LT_EVEN=0 keeps the second form everywhere. Fixed by k within a run, so batch
// invariance holds under either.
struct KSplit {
  int64_t kc, full, rest;
};
KSplit lt_k_split(int64_t k);

// d = x @ w.T over the first kc columns of w [m, k] and x [rows, k] (bf16 bits), and of each of the
// next batch - 1 chunks of kc columns; d: [batch][rows][m] (cuBLASLt's column-major D [m, rows]), its
// rows ld >= m apart (a multiple of 4). invariant = false: cuBLASLt's own algorithm for rows rows,
// split-K allowed (not batch invariant).
void lt_product(const void* w, int64_t m, const void* x, int64_t rows, int64_t k, int64_t kc, int batch, float* d,
                int64_t ld, bool invariant);

// lt_product's own candidates for few rows (matmul_gemv_cuda.cu): d = x @ w.T as lt_product computes
// it (the same arguments; stride: d's chunk products apart), one chain of mma k-steps per output.
// W as the mma's A (rows <= 8) or as its B (rows <= 16); slab_k k columns a slab, `stages` slabs of
// the pipeline. Run only where admitted (above); every variant is tried and timed.
enum class GemvOrder { kWeightsAsA, kWeightsAsB };
struct GemvKernel {
  GemvOrder order;
  int slab_k, stages;
  bool bulk = false;    // W as A, the slabs by the bulk copy engine (cp.async.bulk) instead of cp.async
  bool tensor = false;  // W as A, the slabs as 2D tiles of a tensor map (cp.async.bulk.tensor), 128B-swizzled
  friend bool operator==(const GemvKernel&, const GemvKernel&) = default;
};
std::span<const GemvKernel> gemv_kernels();
bool gemv_fits(const GemvKernel& kernel, int64_t rows, int64_t k, int64_t kc);
void gemv_bf16_cuda(const GemvKernel& kernel, const void* w, int64_t m, const void* x, int64_t rows, int64_t k,
                    int64_t kc, int batch, float* d, int64_t ld, int64_t stride);

// The gate/up product with the activation applied to its own tiles (lt_gated_cuda): gate|up's rows
// interleaved by 8 (w [2 d_ff, k]: rows 16i .. 16i + 7 gate's 8i .. 8i + 7, the next 8 up's), one
// chunk (k <= lt_chunk_k()), out [rows, d_ff] = bf16(act(gate) * up), silu or gelu_tanh. Only a
// tensor-tile kernel (kernel.tensor) has this form; its tiles are the plain product's, so where
// lt_product runs that kernel for these rows the bits are those of lt_product then gated_parts_cuda.
bool gemv_gated_fits(const GemvKernel& kernel, int64_t rows, int64_t k, int64_t d_ff);
void gemv_gated_bf16_cuda(const GemvKernel& kernel, const void* w, const void* x, int64_t rows, int64_t k, int64_t d_ff,
                          bool silu, uint16_t* out);

// The q/k/v product with qkv_rope_cuda applied to its own tiles (lt_qkv_rope_cuda): w [(n_heads + 2
// n_kv_heads) head_dim, k] as packed, one chunk (k <= lt_chunk_k()), each tile of 16 rows two boxes of
// 8 (a head's channels 8i .. 8i + 7 and half + 8i .. half + 8i + 7), so a lane holds both values of a
// rotated pair. Only a tensor-tile kernel has this form, over whole-head rotation (head_dim = 2 half,
// a multiple of 16); each output's mma chain is the plain product's, so where lt_product runs that
// kernel for these rows the bits are those of lt_product then qkv_rope_cuda.
bool gemv_qkv_rope_fits(const GemvKernel& kernel, int64_t rows, int64_t k, const QkvRope& o);
void gemv_qkv_rope_bf16_cuda(const GemvKernel& kernel, const void* w, const void* x, int64_t rows, int64_t k,
                             const QkvRope& o);

// The streaming kernel lt_product runs for this invariant geometry (its arguments), admitting one
// first where none was; nothing where it runs cuBLASLt (or the anchor) or the pointers are not
// 16-byte aligned.
std::optional<GemvKernel> lt_product_gemv(const void* w, int64_t m, const void* x, int64_t rows, int64_t k, int64_t kc,
                                          int batch, int64_t ld);

// A one-warp launch that spins for `us` microseconds and lets the next launch (PDL) be scheduled at
// once: in lt_product's timings it stands for the short kernel (a norm, attention, the activation)
// that precedes every product of a decode step, so a kernel that starts its loads while that one
// runs (the streaming kernels issue their first slabs before the wait) is timed as in the step.
void lead_cuda(double us);

// How many of the batch x rows x m floats of a and b (rows ld apart, chunks a_stride and b_stride
// apart) differ in their bits (lt_product's admission; matmul_lt_cuda.cu).
int64_t count_unequal_cuda(const float* a, int64_t a_stride, const float* b, int64_t b_stride, int batch, int64_t rows,
                           int64_t m, int64_t ld);

}  // namespace kvaudit::engine::cuda
