// The CUDA counterparts of engine/ops.h (STYLE.md §2, Kernels): same contracts, device pointers,
// all launched on the default stream. Every op computes each output row from its own input row with
// a reduction order fixed by the op's shape alone (never by the number of rows), so a token's
// result is bit-identical alone or in any batch. Against the CPU reference they agree within the
// tolerances tests/cuda names (different but fixed summation orders), except rope_cuda, which
// rounds exactly as cpu::rope does.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/ops.h"
#include "kv/layout.h"

namespace kvaudit::engine::cuda {

// Storage type of a weight matrix on the device and how matmuls use it. kF32 and kBf16: fp32
// arithmetic on CUDA cores (kBf16 exact for a bf16 file). kBf16Tc: bf16 weights times the activations
// as a pair of bf16 (hi + lo, 16 significant bits), on tensor cores with fp32 sums; kBf16Lt: bf16
// weights times the activations rounded to bf16, through cuBLASLt (the throughput path);
// kBf16LtFast: the same without batch invariance (opt-in, lt_matmul_many_cuda). kBf16Tc and the
// cuBLASLt types need every matmul's k to be a multiple of 8.
enum class WeightType { kF32, kBf16, kBf16Tc, kBf16Lt, kBf16LtFast };

// y = x @ w.T: x [n, k] fp32, w [m, k] (fp32 or bf16), y [n, m] fp32. kF32/kBf16: every y[t, o]
// is fixed chunks of fmaf chains over c = 0, 1, ..., k-1 (matmul_cuda.cu); kBf16Tc: one fp32
// accumulator over 16-wide mma steps in k order (matmul_tc_cuda.cu). Either way the order depends
// on k alone, whatever n is and whichever tile shape runs; kBf16Lt: the k chunks' sums in the
// order of the one cuBLASLt kernel each shape uses (matmul_lt_cuda.cu).
void matmul_cuda(const float* x, int64_t n, int64_t k, const void* w, WeightType wt, int64_t m, float* y);

// Several products of the same x in one launch (q/k/v, gate/up; at most 3), each exactly as
// matmul_cuda computes it; every w of one storage type.
struct MatmulOutput {
  const void* w;  // [m, k]
  int64_t m;
  float* y;       // [n, m]
};
void matmul_many_cuda(const float* x, int64_t n, int64_t k, WeightType wt, std::span<const MatmulOutput> outs);

// The kBf16Tc products (ws bf16). config: the tile shape, -1 = chosen by tc_matmul_config from n
// and the number of output tiles (0: decode strips 16x32, 1: 64x64, 2: prefill 128x128); any shape
// gives the same bits (tests).
void tc_matmul_many_cuda(const float* x, int64_t n, int64_t k, std::span<const MatmulOutput> outs, int config = -1);
int tc_matmul_config(int64_t n, std::span<const MatmulOutput> outs);

// The kBf16Lt products (matmul_lt_cuda.cu): per product shape and row count, a cuBLASLt algorithm
// checked to compute the bits of one anchor kernel (lt_product.h), k in chunks of 4096
// (KVAUDIT_CUDA_LT_CHUNK) added in order. Products whose weights lie back to
// back in memory (each w = the previous w + its m·k) run as one. invariant = false (kBf16LtFast,
// opt-in: NOT batch invariant, the cost of invariance measured against it): whole-k products with
// cuBLASLt's own choice of algorithm per row count, split-K allowed.
void lt_matmul_many_cuda(const float* x, int64_t n, int64_t k, std::span<const MatmulOutput> outs,
                         bool invariant = true);
// The same with x already rounded to bf16 (xb: [n, k] bf16 bits).
void lt_matmul_many_bf16_cuda(const uint16_t* xb, int64_t n, int64_t k, std::span<const MatmulOutput> outs,
                              bool invariant = true);

// Values held as fp32 parts not yet added: value(t, j) = p[t·ld + j] + p[stride + t·ld + j] + ...,
// added in part order (parts = 1: a plain array of rows ld apart). The kBf16Lt products hand their
// k chunks' products over this way, so the kernel that consumes the sum adds the chunks itself (the
// same additions in the same order as lt_matmul_many_cuda's, one pass over memory and one launch
// fewer).
struct PartSums {
  const float* p;
  int64_t ld;
  int64_t parts = 1;
  int64_t stride = 0;
  PartSums at_column(int64_t j) const { return {p + j, ld, parts, stride}; }
};

// The kBf16Lt products (invariant as lt_matmul_many_cuda) of bf16 activations xb [n, k] (bf16 bits)
// with the weights w [m, k] (bf16), their k chunks' products handed to consume(sums, t0, rows) for
// each pass of rows t0 .. t0+rows-1 (sums: [rows] rows of m columns), before the next pass reuses
// the scratch. invariant = false: kBf16LtFast (one part).
using ConsumeParts = std::function<void(const PartSums& sums, int64_t t0, int64_t rows)>;
void lt_products_cuda(const uint16_t* xb, int64_t n, int64_t k, const void* w, int64_t m, bool invariant,
                      const ConsumeParts& consume);

// outb [n, d_ff] = bf16(act(x @ gate.T) * (x @ up.T)) with w [2 d_ff, k] gate|up's rows interleaved
// by 8 (rows 16i .. 16i + 7: gate's 8i .. 8i + 7, then up's): lt_products_cuda and gated_parts_cuda,
// the same bits, in one launch where the product runs our tensor-tile kernel (lt_product.h,
// gemv_gated_bf16_cuda: a decode step of one or two rows).
void lt_gated_cuda(const uint16_t* xb, int64_t n, int64_t k, const void* w, int64_t d_ff, cpu::Activation act,
                   bool invariant, uint16_t* outb);

// y = bf16(x), round to nearest even (count values; y: bf16 bits).
void to_bf16_cuda(const float* x, int64_t count, uint16_t* y);

// y[t, :] += bias   (y: [n, m], bias: [m])
void add_bias_cuda(float* y, int64_t n, int64_t m, const float* bias);

// x += y   (n values)
void add_inplace_cuda(float* x, const float* y, int64_t n);

// Each of the n rows of width d normalised independently (cpu::rmsnorm); x and y may alias.
void rmsnorm_cuda(cpu::NormKind kind, const float* x, int64_t n, int64_t d, const float* w, float eps, float* y);

// x += add, then y = rmsnorm(x): the residual add and the next sub-block's norm in one launch,
// bit-identical to add_inplace_cuda followed by rmsnorm_cuda. x, add, y: [n, d].
void add_rmsnorm_cuda(cpu::NormKind kind, float* x, const float* add, int64_t n, int64_t d, const float* w, float eps,
                      float* y);

// x += add's sum (in part order), then y = rmsnorm(x) and/or yb = bf16(y) (either may be null; the
// same bits as add_rmsnorm_cuda and a conversion); w null: only x += add (no norm, y and yb unused).
void add_parts_rmsnorm_cuda(cpu::NormKind kind, float* x, const PartSums& add, int64_t n, int64_t d, const float* w,
                            float eps, float* y, uint16_t* yb);

// out[t, j] = act(gate[t, j]) * up[t, j]   (gate, up, out: [n, d_ff]; out may alias gate)
void gated_activation_cuda(cpu::Activation act, const float* gate, const float* up, int64_t n, int64_t d_ff, float* out);
// The same with gate and up as sums of parts and the result as bf16 bits outb [n, d_ff]: the bits
// of gated_activation_cuda on the added parts, then bf16. by8: gate|up interleaved by 8 (lt_gated_cuda's
// weights), output j's gate and up at column 16 (j / 8) + j % 8 of their PartSums.
void gated_parts_cuda(cpu::Activation act, const PartSums& gate, const PartSums& up, int64_t n, int64_t d_ff,
                      uint16_t* outb, bool by8 = false);

// x[i] = cap * tanh(x[i] / cap)
void softcap_cuda(float* x, int64_t n, float cap);

// x[t, :] = table[tokens[t], :] * scale   (tokens: device [n]; table [n_vocab, d]; scale 1 = copy)
void embed_cuda(const int* tokens, int64_t n, const void* table, WeightType wt, int64_t d, float scale, float* x);

// dst[r, :] = src[rows[r], :]   (rows: device [n_rows]; width d)
void gather_rows_cuda(const float* src, const int64_t* rows, int64_t n_rows, int64_t d, float* dst);

// One contiguous run of a scatter: dst[0..n) = src[offset..offset+n).
struct CopySegment {
  int64_t offset;  // into the staged values
  float* dst;      // device
  int64_t n;
};
// Every segment's copy in one launch (segments: device [n_segments]; staged: device values).
void scatter_cuda(const CopySegment* segments, int64_t n_segments, int64_t max_n, const float* staged);

// ---------------------------------------------------------------- rotary embedding

// The cos/sin table cpu::rope computes for rows at positions first_pos .. first_pos+n-1:
// cs[t, i] = cos(pos * inv_freq[i]) * attn_factor, cs[t, half + i] = sin(...) * attn_factor
// (host code, the same float operations as cpu::rope). Appends n * 2*half values to `cs`.
void rope_table(const std::vector<float>& inv_freq, float attn_factor, int64_t first_pos, int64_t n,
                std::vector<float>& cs);

// Rotate-half RoPE of the first 2*half channels of each head of n rows, row t using cs[t]
// (device [n, 2*half]); x: [n, n_heads*head_dim] in place. Bit-identical to cpu::rope.
void rope_cuda(float* x, int64_t n, int n_heads, int head_dim, int half, const float* cs);
// rope_cuda on q [n, n_heads, head_dim] and k [n, n_kv_heads, head_dim] in one launch.
void rope2_cuda(float* q, int n_heads, float* k, int n_kv_heads, int64_t n, int head_dim, int half, const float* cs);

// The biases of q, k and v (device, each null where the model has none).
struct QkvBias {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
};
// The packed product q|k|v [n, (n_heads + 2 n_kv_heads) head_dim] given as parts (PartSums), split
// into q [n, n_heads, head_dim], k and v [n, n_kv_heads, head_dim] with its biases added and q and k
// rotated: the bits of its parts added (lt_matmul_many_bf16_cuda's split), add_bias_cuda on each,
// then rope2_cuda, in one launch.
// kv: where the same launch also stores each batch row's new k and v rows into its sequence's cache
// (RopeKv below; none by default).
struct RopeKv;
void qkv_rope_cuda(const PartSums& parts, const QkvBias& bias, float* q, int n_heads, float* k, float* v,
                   int n_kv_heads, int64_t n, int head_dim, int half, const float* cs, const RopeKv* kv = nullptr);

// The same rotation on host rows (for the K rows the host cache stores), bit-identical to both.
void rope_host(float* x, int64_t n, int n_heads, int head_dim, int half, const float* cs);

// out[r] = the index of the largest value of row r of x [n_rows, n], the first on ties, exactly
// engine::argmax. out: device [n_rows].
void argmax_rows_cuda(const float* x, int64_t n_rows, int64_t n, int* out);

// ---------------------------------------------------------------- KV storage

// One sequence's stored K or V of one layer on the device (kv/layout.h): row r at
// words + r·row_words(), its parameters at params + r·row_params() (tensor: the (scale, zero,
// qscale) triple at params; `channel`: block b's at params + b·block_params()), the fp16 residual
// ring at residual (R > 0). A kPlain view over fp32 rows is the host caches' rows() (host path).
// Where storage stays put the view does not change from call to call (the backend keeps the
// layer's table on the device); what the sequence's length decides comes with each call's rows.
struct KvView {
  kv::KvLayout layout;
  uint32_t* words;
  float* params;
  uint16_t* residual;
  // The store once the sequence holds `rows` rows (layout.quantized_rows of them are codes).
  KVAUDIT_HD kv::KvStore store(int64_t rows) const { return {words, params, residual, layout.quantized_rows(rows)}; }
};

// A sequence's K and V of one layer in a call: whether the device quantizes its new rows (else the
// host caches did), and whether a `tensor` site fits (s, z) on these rows (the sequence's first).
struct SlotKv {
  KvView k, v;
  bool write;
  bool fit_k, fit_v;
};

// Where a sequence's new rows sit in the batch: rows off..off+n-1, positions pos..pos+n-1.
struct SlotRows {
  int64_t off, n, pos;
};

// Layouts whose stored values are each a function of their own new value alone (fp32 as computed,
// or rounded to bf16; no residual window, channels in order): the q/k/v + RoPE launch can store
// them as it computes them (qkv_rope_cuda with a RopeKv), and kv_write_cuda then leaves them alone.
KVAUDIT_HD inline bool rope_stores(const kv::KvLayout& L) {
  return (L.kind == kv::LayoutKind::kPlain || L.kind == kv::LayoutKind::kBf16) && L.residual == 0 && L.pair_dim == 0;
}

// Upper bounds over a call's writing slots (and layers), which size kv_write_cuda's grids.
struct KvWriteBounds {
  int64_t new_rows = 0;   // new rows of a slot
  int64_t quantized = 0;  // rows a token-wise site quantizes in the call (layout.quantized_rows)
  int64_t blocks = 0;     // blocks of N rows a `channel` site quantizes in the call
  int width = 0;          // values per row (n_kv_heads · head_dim), at most kMaxKvWidth
  bool fit = false;       // some site fits its `tensor` (s, z) in this call
  bool ring = false;      // some site keeps a residual window
  bool rope_wrote = false;  // qkv_rope_cuda stored the rope_stores sites: kv_write_cuda skips them
};

// Quantize-on-write: every writing slot's new K rows (k: [n_batch, width], rotated) and V rows
// into its storage at rows pos..pos+n-1, codes and parameters bit-identical to the CPU quantizers
// (the kv/layout.h formulas; tests/cuda), the residual window (SPEC.md §3 streaming) as the CPU
// cache keeps it: rows that leave the window are quantized from their fp16 values, the newest stay
// fp16. slots_kv, rows: device [n_slots]. At most kMaxKvSets parameter sets per row.
inline constexpr int kMaxKvSets = 1024;
inline constexpr int kMaxKvWidth = 4096;
void kv_write_cuda(const SlotKv* slots_kv, const SlotRows* rows, int64_t n_slots, const KvWriteBounds& bounds,
                   const float* k, const float* v);

// ---------------------------------------------------------------- attention

// Query row r of the batch: its sequence (an index into the layer's SlotKv), position (it sees
// keys 0..pos, or the window before it) and the rows the sequence holds once this call's are
// written (len > pos; which of them are codes and which in the residual ring: KvView::store).
struct AttnRow {
  int64_t slot;
  int64_t pos;
  int64_t len;
  int64_t settled = 0;  // the sequence's rows written before this call (its position at the call's start)
};

// Layouts whose stored rows never change once written (no residual window, no per-channel blocks
// quantized later): attention may read a sequence's settled rows before its PDL wait.
KVAUDIT_HD inline bool settles(const kv::KvLayout& L) { return L.residual == 0 && !L.channel(); }

// qkv_rope_cuda's cache stores: the layer's SlotKv and the call's AttnRow per batch row (its slot
// and position). A row's k and v go to its sequence's storage where the slot is written on the
// device (SlotKv::write) and the site's layout is rope_stores: the bits kv_write_cuda stores.
struct RopeKv {
  const SlotKv* slots_kv;
  const AttnRow* rows;
};

// Where qkv_rope_cuda's values go and what it applies, for rows t0.. of a batch (from_row): q
// [n, n_heads, head_dim], k and v [n, n_kv_heads, head_dim], the biases, the cos/sin table cs
// [n, 2 half] and the cache stores (store.rows null: none).
struct QkvRope {
  QkvBias bias;
  float* q;
  float* k;
  float* v;
  int n_heads, n_kv_heads, head_dim, half;
  const float* cs;
  RopeKv store;
  QkvRope from_row(int64_t t0) const {
    QkvRope o = *this;
    o.q += t0 * n_heads * head_dim;
    o.k += t0 * n_kv_heads * head_dim;
    o.v += t0 * n_kv_heads * head_dim;
    o.cs += t0 * 2 * half;
    if (o.store.rows) o.store.rows += t0;
    return o;
  }
};
// The packed q|k|v product of bf16 activations xb [n, k] with w [(n_heads + 2 n_kv_heads) head_dim,
// k] (bf16), then qkv_rope_cuda: lt_products_cuda and qkv_rope_cuda, the same bits, in one launch
// where the product runs our tensor-tile kernel (lt_product.h, gemv_qkv_rope_bf16_cuda: a decode
// step of one or two rows, RoPE over whole heads).
void lt_qkv_rope_cuda(const uint16_t* xb, int64_t n, int64_t k, const void* w, const QkvRope& o, bool invariant);

// out[r, h] = softmax(mask(softcap(q[r, h] . k^T * scale))) v for every row r of the batch and
// every head h (cpu::attention_head per row): rows: device [n_rows]; slots_kv: device, the layer's
// [n_slots] K/V storage, each chunk of keys and values dequantized into shared memory (kv/layout.h's
// formulas: the CPU cache's rows()); q, out:
// [n_rows, n_heads*head_dim]; max_pos: the largest position among the rows. Scores and softmax in
// fp32, the keys in fixed chunks of 64 per block whose partial softmaxes are combined in chunk
// order: every sum's order depends on the row's position (and the layer's window) only.
// order (device [n_rows], optional): a permutation of the rows, the order in which blocks take them
// (rows of one layout kind together keep the code an SM runs small); never changes a bit.
// math: kFp32, every product and sum in fp32 (the reference arithmetic); kFp16TensorCores (the
// bf16-lt weights, whose activations are bf16 already): queries, decoded keys and values and the
// softmax's weights rounded to fp16, the products on tensor cores with fp32 sums, the softmax in
// fp32 (a query or key beyond fp16's ±65504 would become infinite: kFp32 is the path that has no
// such limit); head_dim not a multiple of 16 keeps fp32. Either is fixed per row: batch invariance
// holds.
// out_bf16 (optional): out's values rounded to bf16 as well (the o_proj's input; to_bf16_cuda's bits).
// tiles (optional): the call's prefill runs cut into tiles of consecutive rows of one sequence at
// consecutive positions (attn_tiles builds them on the host); where the layer has no window and the
// math is kFp16TensorCores, a tile's keys and values are decoded once for all its rows, the other
// rows (tiles->rest) go through the row kernel, and each row's bits are the row kernel's.
enum class AttnMath { kFp32, kFp16TensorCores };
inline constexpr int kAttnTileRows = 8;
struct AttnTile {
  int64_t first, count;  // rows first .. first + count - 1 of the call
};
struct AttnTiles {
  const AttnTile* tiles;  // device [n_tiles]
  int64_t n_tiles;
  const int64_t* rest;  // device [n_rest]: the rows no tile holds, in the order blocks take them
  int64_t n_rest;
};
void attention_cuda(const cpu::AttentionParams& p, const float* q, const AttnRow* rows, const SlotKv* slots_kv,
                    int64_t n_rows, int64_t max_pos, float* out, const int64_t* order = nullptr,
                    AttnMath math = AttnMath::kFp32, uint16_t* out_bf16 = nullptr, const AttnTiles* tiles = nullptr);
// The tiles of a call's rows (host): each run of at least two rows of one slot at consecutive
// positions (rows[i + 1] is rows[i]'s next position) cut into tiles of kAttnTileRows (the last may
// be shorter), in the order of `order` (a permutation of the rows: its first row of each run); rest:
// the rows of no tile, in order's order.
void attn_tiles(std::span<const AttnRow> rows, std::span<const int64_t> order, std::vector<AttnTile>& tiles,
                std::vector<int64_t>& rest);
// The chunks of keys attention_cuda splits rows of positions <= max_pos into: with the row count,
// all its launches' shape depends on (a CUDA graph of a decode step stays valid while it holds).
int64_t attention_chunks(int64_t max_pos);

}  // namespace kvaudit::engine::cuda
