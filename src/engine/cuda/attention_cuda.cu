// Causal attention with GQA, soft-capping and sliding window on the device (ops_cuda.h,
// cpu::attention_head), split along the keys (flash-decoding). A row's visible keys are cut into
// chunks of kChunk keys counted from its first visible key; each chunk's softmax is kept
// unnormalised: its max m, the sum l of exp(s - m) and o = sum exp(s - m) v. A row of one chunk
// gives o / l; a row of several adds its chunks in chunk order (combine): M = max m,
// L = sum l exp(m - M), out = (sum o exp(m - M)) / L. How a row is split depends on its position
// and the layer's window only, so which other rows or sequences share the launch never changes its
// arithmetic. A block takes (query row, the heads of one KV head that share it, `span` consecutive
// chunks): a batch of one row gets a block per chunk and head (the last of them to finish combines), a
// large batch few blocks per row that walk all its chunks and combine them themselves; span is
// chosen per launch for speed and never changes a bit (the same chunks, the same combine).
//
// A chunk's keys, then its values, are decoded from the sequence's stored rows into shared memory
// (kv::kv_decode_as, the layout's kind fixed per block: the values the CPU cache's rows() holds),
// coalesced and with many loads in flight; scores and weighted sums then read shared memory only.
// Two arithmetics, fixed per launch (AttnMath): fp32, each score and weighted sum a single thread's
// sum in channel (key) order; or fp16 tensor cores (bf16-lt), the tile, the queries and the
// softmax's weights rounded to fp16 and the products mma.m16n8k16 with fp32 accumulation, k-steps of
// 16 in order. A head's row of an mma never mixes with another's, so the heads a block shares still
// change no bit in either.
#include <algorithm>
#include <new>
#include <string>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/pdl.cuh"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/kv_decode8.cuh"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kChunk = 64;            // keys per chunk: 2 per lane in the softmax
constexpr int kMaxHeadsPerBlock = 8;  // query heads of one KV head sharing a block
constexpr int64_t kMaxPartialFloats = int64_t(64) << 20;  // partial sums held at once (rows in passes)

// Head kv_h of a sequence's stored K or V: a row's addressing once per key (kv_row), each channel's
// once per block (kv_channel), so the tile loops only unpack and scale (kv::kv_decode_as).
struct KvReader {
  kv::KvLayout L;
  kv::KvStore s;
  kv::KvStrides st;
  int c0;  // kv_h * head_dim
  __device__ KvReader(const KvView& v, int64_t len, int kv_h, int d)
      : L(v.layout), s(v.store(len)), st(kv::kv_strides(L)), c0(kv_h * d) {}
  __device__ kv::KvChannel channel(int c) const { return kv::kv_channel(L, c0 + c); }
  __device__ kv::KvRow row(int64_t j) const { return kv::kv_row(L, st, s, j); }
};

// The keys row `row` sees in a layer: j0 .. j0 + n - 1.
struct Visible {
  int64_t j0, n;
};
__device__ Visible visible(const AttnRow& row, int64_t window) {
  const int64_t j0 = window > 0 ? max(int64_t(0), row.pos - window + 1) : 0;
  return {j0, row.pos + 1 - j0};
}

// Where a pass's partial sums live: o [rows][n_heads][max_chunks][head_dim], then (m, l) per
// (row, head, chunk).
struct Partials {
  float* o;
  float* ml;
  int64_t max_chunks;
  KVAUDIT_HD int64_t at(int64_t r, int h, int64_t z, int n_heads) const { return (r * n_heads + h) * max_chunks + z; }
  // at() in 32 bits, for the decode kernel (attention_cuda bounds a pass's partials below 2^31).
  KVAUDIT_HD int at32(int r, int h, int z, int n_heads) const { return (r * n_heads + h) * int(max_chunks) + z; }
};

// Which row block x of a pass takes: b0 + x, or order[b0 + x] (a permutation of the rows that
// groups rows of one layout kind, so the blocks an SM holds at once run the same code).
struct RowOrder {
  const int64_t* order;
  int64_t b0;
  __device__ int64_t row(int64_t x) const { return order ? order[b0 + x] : b0 + x; }
};

// Chunk (m, l, o)'s term of the combine against the chunks' max mx (the file's comment).
__device__ __forceinline__ void combine_term(float m, float l, float o, float mx, float& ls, float& os) {
  const float w = expf(__fsub_rn(m, mx));
  ls = fmaf(l, w, ls);
  os = fmaf(o, w, os);
}

// Head h's chunks 0..chunks-1 at channel c, added in chunk order (the file's comment); i0: the
// first chunk's partial.
// The loads go to L2 (__ldcg): other blocks of the launch wrote the partials.
__device__ float combine(const Partials& part, int i0, int chunks, int d, int c) {
  constexpr int kHeld = 8;  // a short context's chunks: every load in flight at once (one round trip)
  if (chunks <= kHeld) {
    float m[kHeld], l[kHeld], o[kHeld];
#pragma unroll
    for (int z = 0; z < kHeld; ++z)
      if (z < chunks) {
        m[z] = __ldcg(part.ml + 2 * (i0 + z));
        l[z] = __ldcg(part.ml + 2 * (i0 + z) + 1);
        o[z] = __ldcg(part.o + int64_t(i0 + z) * d + c);
      }
    float mx = -INFINITY;
#pragma unroll
    for (int z = 0; z < kHeld; ++z)
      if (z < chunks) mx = fmaxf(mx, m[z]);
    float ls = 0.0f, os = 0.0f;
#pragma unroll
    for (int z = 0; z < kHeld; ++z)
      if (z < chunks) combine_term(m[z], l[z], o[z], mx, ls, os);
    return __fdiv_rn(os, ls);
  }
  float mx = -INFINITY;
  for (int z = 0; z < chunks; ++z) mx = fmaxf(mx, __ldcg(part.ml + 2 * (i0 + z)));
  float l = 0.0f, o = 0.0f;
  for (int z = 0; z < chunks; ++z)
    combine_term(__ldcg(part.ml + 2 * (i0 + z)), __ldcg(part.ml + 2 * (i0 + z) + 1),
                 __ldcg(part.o + int64_t(i0 + z) * d + c), mx, l, o);
  return __fdiv_rn(o, l);
}

// Where a row's outputs go: fp32, and (when the next product reads bf16) its bf16 bits too.
struct Out {
  float* f32;
  uint16_t* bf16;  // or null
  __device__ void put(int64_t i, float v) const {
    f32[i] = v;
    if (bf16) bf16[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
  }
};

// A chunk's keys or values in shared memory, [kChunk][ld] of T: fp32, or fp16 (AttnMath's tensor
// cores: each decoded value rounded to nearest even; fp16 holds the fp16 caches and the residual
// ring exactly).
template <typename T>
struct Tile {
  T* p;
  int ld;
  __device__ T* at(int j, int c) const { return p + j * ld + c; }
  __device__ void put(int j, int c, float x) const {
    if constexpr (std::is_same_v<T, float>) *at(j, c) = x;
    else *at(j, c) = __float2half_rn(x);
  }
  // Channels c .. c + 3 (c a multiple of 4).
  __device__ void put4(int j, int c, float a, float b, float e, float f) const {
    if constexpr (std::is_same_v<T, float>) {
      *reinterpret_cast<float4*>(at(j, c)) = make_float4(a, b, e, f);
    } else {
      const __half2 lo = __floats2half2_rn(a, b), hi = __floats2half2_rn(e, f);
      *reinterpret_cast<uint2*>(at(j, c)) =
          make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
    }
  }
  // Channels c .. c + 7 (c a multiple of 8).
  __device__ void put8(int j, int c, const float (&x)[8]) const {
    if constexpr (std::is_same_v<T, float>) {
      put4(j, c, x[0], x[1], x[2], x[3]);
      put4(j, c + 4, x[4], x[5], x[6], x[7]);
    } else {
      __half2 h[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) h[i] = __floats2half2_rn(x[2 * i], x[2 * i + 1]);
      *reinterpret_cast<uint4*>(at(j, c)) = *reinterpret_cast<const uint4*>(h);
    }
  }
};

// Channel c (of the reader's head) of keys or values jb .. jb + nk - 1 into tile row j, decoded as
// kind K: the threads take consecutive channels of a row (coalesced reads of the
// stored row), several rows per pass when head_dim < kThreads. Rows [0, nq) are quantized, the rest
// in the residual ring (kv::kv_row), so neither loop branches per row, and each thread decodes
// kBatch rows into registers before it stores them: their loads are in flight together (a
// thread's dependent round trips to memory, not arithmetic, bound this loop).
template <kv::LayoutKind K, typename T>
__device__ void load_tile(const KvReader& rd, const kv::KvRow* rows, const kv::KvChannel* ch, int nq, int nk, int d,
                          const Tile<T>& tile) {
  constexpr int kBatch = 8;
  const int rp = max(1, kThreads / d);  // rows a pass covers
  const int tr = threadIdx.x / d;
  if (tr >= rp) return;
  for (int c = threadIdx.x % d; c < d; c += kThreads) {
    const kv::KvChannel cc = ch[c];
    int j = tr;
    for (; j + (kBatch - 1) * rp < nq; j += kBatch * rp) {
      float x[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const kv::KvRow& r = rows[j + u * rp];
        x[u] = kv::kv_decode_as<K>(rd.L, cc, r.words, r.params);
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) tile.put(j + u * rp, c, x[u]);
    }
    for (; j < nq; j += rp) tile.put(j, c, kv::kv_decode_as<K>(rd.L, cc, rows[j].words, rows[j].params));
    const int ca = rd.c0 + c;
    for (; j < nk; j += rp) tile.put(j, c, fp16_to_float(rows[j].ring[ca]));
  }
}

// Codes pos .. pos + 3 of a row packed at `bits` (<= 16; pos a multiple of 4) per value, LSB first
// (kv::unpack_code's order): a 4-code window spans at most two words.
__device__ __forceinline__ uint64_t codes4(const uint32_t* words, int pos, int bits) {
  const int at = pos * bits, w = at >> 5, sh = at & 31;
  uint64_t win = words[w];
  if (sh + 4 * bits > 32) win |= uint64_t(words[w + 1]) << 32;
  return win >> sh;
}

// Four channels c .. c + 3 of one stored row of kind K, each through kv::kv_code_value with its
// own KvChannel; SAME: the four share their parameters (one set, kv::kv_set), loaded once.
template <kv::LayoutKind K, bool SAME>
__device__ __forceinline__ float4 decode4(const kv::KvLayout& L, const kv::KvChannel (&ch)[4], const kv::KvRow& r) {
  if constexpr (K == kv::LayoutKind::kPlain) {
    return *reinterpret_cast<const float4*>(r.words + ch[0].code);
  } else {
    const int bits = kv::kv_code_bits<K>(L);
    const uint64_t win = codes4(r.words, ch[0].code, bits);
    const uint32_t mask = (1u << bits) - 1u;
    float x[4];
    if constexpr (SAME) {
      const kv::KvSet set = kv::kv_set<K>(L, ch[0], r.params);
#pragma unroll
      for (int i = 0; i < 4; ++i) x[i] = kv::kv_set_value<K>(L, set, uint32_t(win >> (i * bits)) & mask);
    } else {
#pragma unroll
      for (int i = 0; i < 4; ++i) x[i] = kv::kv_code_value<K>(L, ch[i], uint32_t(win >> (i * bits)) & mask, r.params);
    }
    return {x[0], x[1], x[2], x[3]};
  }
}

// load_tile four channels per thread: the threads of a row take its consecutive 4-channel groups
// (coalesced), a thread's groups keep their channels (KvChannel in registers), and each thread
// decodes kBatch rows before storing them. Only for layouts whose four consecutive channels are
// four consecutive codes (vector_ok).
template <kv::LayoutKind K, bool SAME, typename T>
__device__ void load_tile4(const KvReader& rd, const kv::KvRow* rows, const kv::KvChannel* ch, int nq, int nk, int d,
                           const Tile<T>& tile) {
  constexpr int kBatch = 2;
  const int groups = d / 4;
  const int rp = max(1, kThreads / groups);  // rows a pass covers
  const int tr = threadIdx.x / groups;
  if (tr >= rp) return;
  for (int cg = threadIdx.x % groups; cg < groups; cg += kThreads) {
    const int c = 4 * cg;
    const kv::KvChannel cc[4] = {ch[c], ch[c + 1], ch[c + 2], ch[c + 3]};
    int j = tr;
    for (; j + (kBatch - 1) * rp < nq; j += kBatch * rp) {
      float4 x[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) x[u] = decode4<K, SAME>(rd.L, cc, rows[j + u * rp]);
#pragma unroll
      for (int u = 0; u < kBatch; ++u) tile.put4(j + u * rp, c, x[u].x, x[u].y, x[u].z, x[u].w);
    }
    for (; j < nq; j += rp) {
      const float4 x = decode4<K, SAME>(rd.L, cc, rows[j]);
      tile.put4(j, c, x.x, x.y, x.z, x.w);
    }
    const int ca = rd.c0 + c;
    for (; j < nk; j += rp) {
      float x[4];
      ring4(rows[j].ring + ca, x);
      tile.put4(j, c, x[0], x[1], x[2], x[3]);
    }
  }
}

// load_tile eight positions per thread (octet_ok layouts, kv_decode8.cuh): the threads of a row take
// its consecutive 8-position groups (coalesced), each keeps its group's KvChannel in registers and
// decodes kBatch rows before storing them. Positions are channels, except for llama.cpp's
// interleaved keys (pair_dim): there positions p .. p + 7 hold channels p/2 .. p/2 + 3 (even) and
// d/2 + p/2 .. d/2 + p/2 + 3 (odd).
template <kv::LayoutKind K, bool CH, typename T>
__device__ void load_tile8(const KvReader& rd, const kv::KvRow* rows, const kv::KvChannel* ch, int nq, int nk, int d,
                           const Tile<T>& tile) {
  constexpr int kBatch = 2;
  const int groups = d / 8;
  const int rp = max(1, kThreads / groups);  // rows a pass covers
  const int tr = threadIdx.x / groups;
  if (tr >= rp) return;
  const bool pairs = rd.L.pair_dim != 0;
  const int half = d / 2;
  for (int g8 = threadIdx.x % groups; g8 < groups; g8 += kThreads) {
    const int p = 8 * g8;  // the group's first position in the head
    const kv::KvChannel cc = ch[pairs ? p / 2 : p];
    const auto store = [&](int j, const float (&x)[8]) {
      if (pairs) {
        tile.put4(j, p / 2, x[0], x[2], x[4], x[6]);
        tile.put4(j, half + p / 2, x[1], x[3], x[5], x[7]);
      } else {
        tile.put8(j, p, x);
      }
    };
    int j = tr;
    for (; j + (kBatch - 1) * rp < nq; j += kBatch * rp) {
      float x[kBatch][8];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) decode8<K, CH>(rd.L, cc, rows[j + u * rp], x[u]);
#pragma unroll
      for (int u = 0; u < kBatch; ++u) store(j + u * rp, x[u]);
    }
    for (; j < nq; j += rp) {
      float x[8];
      decode8<K, CH>(rd.L, cc, rows[j], x);
      store(j, x);
    }
    for (; j < nk; j += rp) {  // the ring holds channels in order
      const uint16_t* ring = rows[j].ring + rd.c0;
      float x[8];
      if (pairs) {
        ring4(ring + p / 2, x);
        ring4(ring + half + p / 2, x + 4);
        tile.put4(j, p / 2, x[0], x[1], x[2], x[3]);
        tile.put4(j, half + p / 2, x[4], x[5], x[6], x[7]);
      } else {
        ring8(ring + p, x);
        tile.put8(j, p, x);
      }
    }
  }
}

// Whether four consecutive channels of the head are four consecutive codes, 16-byte aligned as
// fp32 or fp16 (the ring): load_tile4 applies.
__device__ bool vector_ok(const kv::KvLayout& L, int d) {
  return d % 4 == 0 && L.width % 4 == 0 && L.pair_dim == 0 && (L.kind == kv::LayoutKind::kPlain || L.bits <= 16);
}

// Whether channels c, c + 1, c + 2, c + 3 (c a multiple of 4) always share one parameter set.
__device__ bool sets_of_four(const kv::KvLayout& L) {
  switch (L.kind) {
    case kv::LayoutKind::kInt: return L.tensor || (!L.channel() && L.set_len % 4 == 0);
    case kv::LayoutKind::kGgml: return true;  // blocks of 32
    default: return true;                     // one scale or none
  }
}

// load_tile with the layout's kind fixed for the whole loop (one sequence, one kind per block).
template <typename T>
__device__ void load_tile(const KvReader& rd, const kv::KvRow* rows, const kv::KvChannel* ch, int64_t jb, int nk, int d,
                          const Tile<T>& tile) {
  const int nq = int(min(int64_t(nk), max(int64_t(0), rd.s.quantized - jb)));
  using LK = kv::LayoutKind;
  if (octet_ok(rd.L, d)) {
    switch (rd.L.kind) {
      case LK::kPlain: load_tile8<LK::kPlain, false>(rd, rows, ch, nq, nk, d, tile); return;
      case LK::kBf16: load_tile8<LK::kBf16, false>(rd, rows, ch, nq, nk, d, tile); return;
      case LK::kInt:
        if (rd.L.channel()) load_tile8<LK::kInt, true>(rd, rows, ch, nq, nk, d, tile);
        else load_tile8<LK::kInt, false>(rd, rows, ch, nq, nk, d, tile);
        return;
      case LK::kFp8: load_tile8<LK::kFp8, false>(rd, rows, ch, nq, nk, d, tile); return;
      case LK::kGgml: load_tile8<LK::kGgml, false>(rd, rows, ch, nq, nk, d, tile); return;
    }
  }
  if (vector_ok(rd.L, d)) {
    const bool same = sets_of_four(rd.L);
    switch (rd.L.kind) {
      case LK::kPlain: load_tile4<LK::kPlain, true>(rd, rows, ch, nq, nk, d, tile); return;
      case LK::kBf16: load_tile4<LK::kBf16, true>(rd, rows, ch, nq, nk, d, tile); return;
      case LK::kInt:
        if (same) load_tile4<LK::kInt, true>(rd, rows, ch, nq, nk, d, tile);
        else load_tile4<LK::kInt, false>(rd, rows, ch, nq, nk, d, tile);
        return;
      case LK::kFp8: load_tile4<LK::kFp8, true>(rd, rows, ch, nq, nk, d, tile); return;
      case LK::kGgml: load_tile4<LK::kGgml, true>(rd, rows, ch, nq, nk, d, tile); return;
    }
  }
  switch (rd.L.kind) {
    case LK::kPlain: load_tile<LK::kPlain>(rd, rows, ch, nq, nk, d, tile); break;
    case LK::kBf16: load_tile<LK::kBf16>(rd, rows, ch, nq, nk, d, tile); break;
    case LK::kInt: load_tile<LK::kInt>(rd, rows, ch, nq, nk, d, tile); break;
    case LK::kFp8: load_tile<LK::kFp8>(rd, rows, ch, nq, nk, d, tile); break;
    case LK::kGgml: load_tile<LK::kGgml>(rd, rows, ch, nq, nk, d, tile); break;
  }
}

// Row stride of the fp32 K/V tile in shared memory: a multiple of 4 floats whose quarter is odd, so
// the score loop's 16-byte reads of 8 consecutive keys fall in distinct banks; d + 1 when head_dim
// is not a multiple of 4 (scalar reads).
KVAUDIT_HD inline int tile_ld(int d) { return d % 4 != 0 ? d + 1 : (d / 4) % 2 == 0 ? d + 4 : d + 8; }

// The tensor-core arithmetic: n fp16 values per row of a tile, queries or weights stored n + 8 apart
// (n a multiple of 16: 16-byte rows 4 banks apart, so the 8 rows a fragment reads hit distinct
// banks); the mma's 16 rows are the block's heads (at most kMmaRows), the rest zeros in registers.
constexpr int kMmaRows = 8;
KVAUDIT_HD inline int half_ld(int n) { return n + 8; }
KVAUDIT_HD inline bool tensor_cores_fit(int d) { return d % 16 == 0; }

// Chunks a block's pass over its keys holds (attention_kernel): on tensor cores two, decoded
// together, so that a pass's barriers, row addressing and loads are shared by both; each chunk's
// arithmetic stays its own.
KVAUDIT_HD constexpr int chunks_per_pass(bool tc) { return tc ? 2 : 1; }

// A block's shared memory in bytes: the K/V tile, the queries, the scores, (tensor cores) the
// softmax's weights in fp16, (m, l) per head, for each chunk of a pass; both heads' channels. For
// the kernel and its launch.
struct SmemLayout {
  size_t q, sc, pw, ml, ch, total;
  KVAUDIT_HD SmemLayout(int d, int hpb, bool tc) {
    const size_t per = size_t(chunks_per_pass(tc));
    q = per * (tc ? size_t(kChunk) * half_ld(d) * 2 : size_t(kChunk) * tile_ld(d) * 4);
    sc = q + (tc ? size_t(kMmaRows) * half_ld(d) * 2 : size_t(hpb) * d * 4);
    pw = sc + per * size_t(hpb) * kChunk * 4;
    ml = pw + (tc ? per * size_t(kMmaRows) * half_ld(kChunk) * 2 : 0);
    ch = ml + per * size_t(2 * hpb) * 4;
    total = ch + 2 * sizeof(kv::KvChannel) * size_t(d);
  }
};

__device__ __forceinline__ uint32_t half_pair(const __half* p) { return *reinterpret_cast<const uint32_t*>(p); }

// c += A·B for one m16n8k16 tile, fp16 inputs, fp32 accumulation: A's rows 0-7 given (a0: columns
// 0-7, a2: 8-15, this lane's pair), rows 8-15 zero; B's 16 x 8 as b0, b1.
__device__ __forceinline__ void mma_rows8(float (&c)[4], uint32_t a0, uint32_t a2, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
}

// B's fragment of rows k0 .. k0 + 15 of a row-major [k][n] fp16 tile at columns n0 .. n0 + 7 (row:
// lane % 16's address), transposed by the load.
__device__ __forceinline__ void b_fragment_trans(uint32_t& b0, uint32_t& b1, const __half* row) {
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n" : "=r"(b0), "=r"(b1) : "r"(a));
}

__device__ __forceinline__ float scaled_score(const cpu::AttentionParams& p, float s) {
  const float x = __fmul_rn(s, p.scale);
  return p.softcap > 0 ? __fmul_rn(p.softcap, tanhf(__fdiv_rn(x, p.softcap))) : x;
}

// The key and value heads' channel addressing into shared memory, once per block.
__device__ void head_channels(const KvReader& k, const KvReader& v, kv::KvChannel* kch, kv::KvChannel* vch, int d) {
  for (int c = threadIdx.x; c < d; c += kThreads) {
    kch[c] = k.channel(c);
    vch[c] = v.channel(c);
  }
}

// One warp's softmax of a chunk for one (row, head), unnormalised: keys lane and lane + 32 of nk;
// the max, then exp(s - max) (tensor cores: rounded to fp16 into w, zeros past the keys, the
// weights the mma reads; fp32: back into s) and their sum, each lane's pair added first, then the
// butterfly; (max, sum) into ml[0], ml[1].
template <bool TC>
__device__ void chunk_softmax(float* s, int nk, __half* w, float* ml, int lane) {
  const float s0 = lane < nk ? s[lane] : -INFINITY, s1 = lane + 32 < nk ? s[lane + 32] : -INFINITY;
  float m = fmaxf(s0, s1);
#pragma unroll
  for (int o = 16; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  float e0 = lane < nk ? expf(__fsub_rn(s0, m)) : 0.0f, e1 = lane + 32 < nk ? expf(__fsub_rn(s1, m)) : 0.0f;
  if constexpr (TC) {
    const __half w0 = __float2half_rn(e0), w1 = __float2half_rn(e1);
    w[lane] = w0;
    w[lane + 32] = w1;
    e0 = __half2float(w0);
    e1 = __half2float(w1);
  } else {
    if (lane < nk) s[lane] = e0;
    if (lane + 32 < nk) s[lane + 32] = e1;
  }
  float l = __fadd_rn(e0, e1);
#pragma unroll
  for (int o = 16; o > 0; o /= 2) l = __fadd_rn(l, __shfl_xor_sync(0xffffffffu, l, o));
  if (lane == 0) {
    ml[0] = m;
    ml[1] = l;
  }
}

// Tensor cores: a warp's scores of keys kb's 8 rows for the queries' rows qa (this lane's
// fragment addresses), head_dim d in k-steps of 16 in order.
__device__ __forceinline__ void scores_tc(float (&acc)[4], const __half* qa, const __half* kb, int d) {
  for (int k0 = 0; k0 < d; k0 += 16)
    mma_rows8(acc, half_pair(qa + k0), half_pair(qa + k0 + 8), half_pair(kb + k0), half_pair(kb + k0 + 8));
}

// Tensor cores: the weights' rows pa (this lane's fragment address) times the value tile's
// channels c0 .. c0 + 7 over ceil(nk / 16) k-steps of keys in order; a key at or past nk reads
// `zero` (a zero row) where given, else the tile's own row (zeroed by the caller).
__device__ __forceinline__ void weighted_sums_tc(float (&acc)[4], const __half* pa, const Tile<__half>& tile, int nk,
                                                 int c0, const __half* zero, int lane) {
  for (int st = 0; st < (nk + 15) / 16; ++st) {
    const int key = 16 * st + lane % 16;
    uint32_t b0, b1;
    b_fragment_trans(b0, b1, zero != nullptr && key >= nk ? zero : tile.at(key, c0));
    mma_rows8(acc, half_pair(pa + 16 * st), half_pair(pa + 16 * st + 8), b0, b1);
  }
}

// Block (x, y, z): query row r = order.row(x) of the pass, chunks z·span .. z·span+span-1 of its keys, heads
// y·HPB .. y·HPB+HPB-1, which share one KV head (HPB divides n_heads / n_kv_heads), so each key and
// value is decoded once for all of them. The block walks its chunks in passes of chunks_per_pass
// (two on tensor cores: the barriers, row addressing and loads of a pass serve both). Per pass: the
// keys decoded into shared memory, each chunk's scores, its softmax per head by one warp, the values
// decoded into the same tile, each chunk's weighted sums. fp32
// (TC false): a score per (head, key) by one thread (channels in order), an output channel per
// thread (keys in order). Tensor cores: a warp's 8 keys for every head, then a warp's 8-channel
// groups, each one mma per 16 channels (keys) in order. Every head's arithmetic is what a block of
// its own would do, so neither HPB nor span changes a bit. fp32: HPB is a template argument so that
// the per-head loops are unrolled exactly HPB wide. Tensor cores: the heads are the mma's rows, HPB is
// the launch's (HPB_T 0) and D, when not 0, fixes head_dim, so that the tile's index arithmetic and
// loops are constants (an issue-bound kernel: ncu counted ~1,400 warp instructions per chunk).
template <int HPB_T, bool TC, int D>
__global__ void __launch_bounds__(kThreads, 4) attention_kernel(cpu::AttentionParams p, const float* __restrict__ q,
                                                             const AttnRow* __restrict__ rows,
                                                             const SlotKv* __restrict__ slots_kv, Partials part,
                                                             int span, RowOrder order, Out out,
                                                             unsigned* __restrict__ arrived, int hpb_launch, bool early_on) {
  pdl_trigger();
  TlMarks marks;
  static_assert(!TC || (HPB_T <= kMmaRows && kChunk == 8 * kWarps));
  static_assert(TC || HPB_T > 0);
  const int HPB = HPB_T > 0 ? HPB_T : hpb_launch;
  using T = std::conditional_t<TC, __half, float>;
  constexpr int kPer = chunks_per_pass(TC);
  extern __shared__ float4 smem4[];
  auto* smem = reinterpret_cast<unsigned char*>(smem4);
  const int d = D > 0 ? D : p.head_dim;
  const SmemLayout lay(d, HPB, TC);
  const Tile<T> tile{reinterpret_cast<T*>(smem), TC ? half_ld(d) : tile_ld(d)};  // the pass's keys, then values
  float* qs = reinterpret_cast<float*>(smem + lay.q);      // fp32: [HPB][head_dim]
  auto* qh = reinterpret_cast<__half*>(smem + lay.q);      // tensor cores: [kMmaRows][half_ld(d)]
  float* sc = reinterpret_cast<float*>(smem + lay.sc);     // [kPer][HPB][kChunk] scores (fp32: then exp(s - m))
  auto* pw = reinterpret_cast<__half*>(smem + lay.pw);     // tensor cores: [kPer][kMmaRows][half_ld(kChunk)] exp(s - m)
  float* ml = reinterpret_cast<float*>(smem + lay.ml);     // [kPer][HPB][2] each chunk's max and sum per head
  auto* kch = reinterpret_cast<kv::KvChannel*>(smem + lay.ch);  // [head_dim] the key head's channels
  kv::KvChannel* vch = kch + d;                                 // [head_dim] the value head's
  const int b = int(blockIdx.x), r = int(order.row(b));  // b: the row's partials in this pass
  const int h0 = int(blockIdx.y) * HPB;
  const AttnRow row = rows[r];
  const Visible vis = visible(row, p.window);
  const int j0 = int(vis.j0), n_vis = int(vis.n);
  const int chunks = (n_vis + kChunk - 1) / kChunk;
  const int z0 = int(blockIdx.z) * span, z1 = min(chunks, z0 + span);
  if (z0 >= chunks) return pdl_wait();  // every block waits before it ends (pdl.cuh)
  const int q_stride = p.n_heads * d;
  const int kv_h = h0 / (p.n_heads / p.n_kv_heads);  // repeat_kv
  // Early: a block of one chunk on tensor cores whose sequence's stored rows never change once
  // written (settles()) decodes the rows earlier calls wrote (row.settled) before its PDL wait,
  // the keys into the tile's first chunk and the values into its second; after the wait only the
  // queries and this call's rows remain. A batch-1 decode is a chain of launches, and this block
  // is resident well before the q/k/v launch ends. The same values reach the same arithmetic.
  const SlotKv& skv = slots_kv[row.slot];
  const bool early = early_on && TC && z1 - z0 == 1 && skv.write && !skv.fit_k && !skv.fit_v && settles(skv.k.layout) &&
                     settles(skv.v.layout);
  if (!early) pdl_wait();
  // The readers live in shared memory: the loops read a few of their fields.
  __shared__ alignas(KvReader) unsigned char reader_bytes[2 * sizeof(KvReader)];
  auto* readers = reinterpret_cast<KvReader*>(reader_bytes);
  if (threadIdx.x < 2) new (&readers[threadIdx.x]) KvReader(threadIdx.x == 0 ? skv.k : skv.v, row.len, kv_h, d);
  const float* qr = q + int64_t(r) * q_stride + h0 * d;
  // (the queries: after the wait; an early block converts them in its pass)
  const auto queries = [&] {
    if constexpr (TC) {  // the heads' rows, zeros below them
      for (int e = threadIdx.x; e < kMmaRows * d; e += kThreads)
        qh[(e / d) * half_ld(d) + e % d] = __float2half_rn(e / d < HPB ? qr[e] : 0.0f);
    } else {
      for (int e = threadIdx.x; e < HPB * d; e += kThreads) qs[e] = qr[e];
    }
  };
  if (!early) queries();
  if constexpr (TC)  // the weights' rows past HPB
    for (int e = threadIdx.x; e < kPer * kMmaRows * kChunk; e += kThreads)
      pw[(e / kChunk) * half_ld(kChunk) + e % kChunk] = __float2half_rn(0.0f);
  __syncthreads();
  marks.mark();
  const KvReader& k = readers[0];
  const KvReader& v = readers[1];
  head_channels(k, v, kch, vch, d);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int frag_row = lane / 4, frag_col = 2 * (lane % 4);  // an mma fragment's: head, first of two columns
  // Head g's channel c of chunk z, whose (m, l) per head are at mz.
  const auto put = [&](int g, int c, float a, int z, const float* mz) {
    if (chunks == 1) {
      out.put(int64_t(r) * q_stride + (h0 + g) * d + c, __fdiv_rn(a, mz[2 * g + 1]));
    } else {
      const int pi = part.at32(b, h0 + g, z, p.n_heads);
      part.o[int64_t(pi) * d + c] = a;
      if (c == 0) {
        part.ml[2 * pi] = mz[2 * g];
        part.ml[2 * pi + 1] = mz[2 * g + 1];
      }
    }
  };
  // The pass's rows, addressed once for all threads.
  __shared__ kv::KvRow krows[kPer * kChunk], vrows[kPer * kChunk];
  for (int z = z0; z < z1; z += kPer) {
    const int nz = min(kPer, z1 - z);  // the pass's chunks z .. z + nz - 1
    const int jb = j0 + z * kChunk;    // their first key
    // and their keys (from the 64-bit count: computed in 32 bits, nvcc unrolls the loaders' cold
    // paths and the kernel's code grows by half)
    const int nk = int(min(int64_t(nz * kChunk), vis.n - z * kChunk));
    // Chunk c's keys in the pass and its rows of the tile.
    const auto keys_of = [&](int c) { return min(kChunk, nk - c * kChunk); };
    const auto tile_of = [&](int c) { return Tile<T>{tile.p + c * kChunk * tile.ld, tile.ld}; };
    // A chunk's values in vt, its last k-step's rows past its keys: zeros (their weights are zero;
    // 0 · NaN is not).
    const auto zero_tail = [&](Tile<T> vt, int keys) {
      for (int e = threadIdx.x; e < ((keys + 15) / 16 * 16 - keys) * d; e += kThreads) vt.put(keys + e / d, e % d, 0.0f);
    };
    for (int t = threadIdx.x; t < nk; t += kThreads) {
      krows[t] = k.row(jb + t);
      vrows[t] = v.row(jb + t);
    }
    __syncthreads();
    marks.mark();
    if (early) {  // one chunk: its settled rows, the wait, then this call's rows and the queries
      const Tile<T> vt = tile_of(1);
      const int ns = int(min(int64_t(nk), max(int64_t(0), row.settled - jb)));
      load_tile(k, krows, kch, jb, ns, d, tile);
      load_tile(v, vrows, vch, jb, ns, d, vt);
      pdl_wait();
      queries();
      load_tile(k, krows + ns, kch, jb + ns, nk - ns, d, Tile<T>{tile.at(ns, 0), tile.ld});
      load_tile(v, vrows + ns, vch, jb + ns, nk - ns, d, Tile<T>{vt.at(ns, 0), vt.ld});
      zero_tail(vt, nk);
    } else {
      load_tile(k, krows, kch, jb, nk, d, tile);
    }
    __syncthreads();
    marks.mark();
    // (q @ k.T) * scaling, then tanh(s / cap) * cap.
    if constexpr (TC) {
      const int n0 = 8 * warp;  // this warp's keys n0 .. n0 + 7 of each chunk, one per fragment row
      for (int c = 0; c < nz; ++c) {
        const int nkc = keys_of(c);
        if (n0 >= nkc) continue;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        scores_tc(acc, qh + frag_row * half_ld(d) + frag_col, tile.at(c * kChunk + n0 + frag_row, frag_col), d);
        if (frag_row < HPB)
          for (int i = 0; i < 2; ++i)
            if (n0 + frag_col + i < nkc) sc[(c * HPB + frag_row) * kChunk + n0 + frag_col + i] = scaled_score(p, acc[i]);
      }
    } else {
      // thread (head g, key j), channels in order; a warp's 32 keys read 16 bytes each per step from
      // distinct banks (tile_ld).
      for (int i = threadIdx.x; i < HPB * kChunk; i += kThreads) {
        const int g = i / kChunk, j = i % kChunk;
        if (j >= nk) continue;
        const float* kj = tile.at(j, 0);
        const float* qg = qs + g * d;
        float s = 0.0f;
        if (d % 4 == 0) {
          for (int c = 0; c < d; c += 4) {
            const float4 kk = *reinterpret_cast<const float4*>(kj + c);
            const float4 qq = *reinterpret_cast<const float4*>(qg + c);
            s = fmaf(qq.x, kk.x, s);
            s = fmaf(qq.y, kk.y, s);
            s = fmaf(qq.z, kk.z, s);
            s = fmaf(qq.w, kk.w, s);
          }
        } else {
          for (int c = 0; c < d; ++c) s = fmaf(qg[c], kj[c], s);
        }
        sc[g * kChunk + j] = scaled_score(p, s);
      }
    }
    __syncthreads();
    marks.mark();
    // Each chunk's softmax per head, a warp each (chunk_softmax); the values are decoded into the
    // tile meanwhile (the keys are no longer read).
    for (int pg = warp; pg < nz * HPB; pg += kWarps) {
      const int c = pg / HPB, g = pg % HPB;
      chunk_softmax<TC>(sc + pg * kChunk, keys_of(c), pw + (c * kMmaRows + g) * half_ld(kChunk), ml + 2 * pg, lane);
    }
    if (!early) {
      load_tile(v, vrows, vch, jb, nk, d, tile);
      if constexpr (TC) zero_tail(tile_of(nz - 1), keys_of(nz - 1));  // only the pass's last chunk can be short
    }
    __syncthreads();
    marks.mark();
    // exp(s - m) @ v
    if constexpr (TC) {
      for (int c = 0; c < nz; ++c) {
        const __half* pa = pw + (c * kMmaRows + frag_row) * half_ld(kChunk) + frag_col;
        const Tile<T> vt = tile_of(early ? 1 : c);  // (early: one chunk, its values in the second slot)
        const int nkc = keys_of(c);
        for (int n0 = 8 * warp; n0 < d; n0 += 8 * kWarps) {  // this warp's channels n0 .. n0 + 7
          float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
          weighted_sums_tc(acc, pa, vt, nkc, n0, nullptr, lane);
          if (frag_row < HPB) {
            put(frag_row, n0 + frag_col, acc[0], z + c, ml + 2 * c * HPB);
            put(frag_row, n0 + frag_col + 1, acc[1], z + c, ml + 2 * c * HPB);
          }
        }
      }
    } else {
      // the threads split evenly among the heads, thread i of head g sums the channel pairs c = 2i,
      // 2i + 2·kPerHead, ... over the keys in order (8-byte reads of consecutive pairs by a warp).
      constexpr int kPerHead = kThreads / HPB_T;
      const int g = threadIdx.x / kPerHead, i = threadIdx.x % kPerHead;
      const float* scg = sc + g * kChunk;
      if (g < HPB) {
        if (d % 2 == 0) {
          for (int c = 2 * i; c < d; c += 2 * kPerHead) {
            float a0 = 0.0f, a1 = 0.0f;
            for (int j = 0; j < nk; ++j) {
              const float2 val = *reinterpret_cast<const float2*>(tile.at(j, c));
              const float e = scg[j];
              a0 = fmaf(e, val.x, a0);
              a1 = fmaf(e, val.y, a1);
            }
            put(g, c, a0, z, ml);
            put(g, c + 1, a1, z, ml);
          }
        } else {
          for (int c = i; c < d; c += kPerHead) {
            float a = 0.0f;
            for (int j = 0; j < nk; ++j) a = fmaf(scg[j], *tile.at(j, c), a);
            put(g, c, a, z, ml);
          }
        }
      }
    }
    __syncthreads();  // the tile, sc and ml are the next pass's
    marks.mark();
  }
  // The row's chunks combined by the block that walked them all, else by the last of its blocks to
  // finish (every block's partials written and fenced before it counts itself in; the count wraps
  // to 0 at the last arrival, so a launch that died midway cannot leave it wrong for every later one).
  if (chunks == 1) return marks.flush();
  bool combines = z0 == 0 && z1 == chunks;
  if (!combines) {
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
      unsigned* count = arrived + b * gridDim.y + blockIdx.y;
      const unsigned blocks = unsigned((chunks + span - 1) / span);
      last = atomicInc(count, blocks - 1) == blocks - 1;
      if (last) __threadfence();  // acquire: the other blocks' partials, read below
    }
    __syncthreads();
    combines = last;
  }
  marks.mark();
  if (combines)
    for (int e = threadIdx.x; e < HPB * d; e += kThreads) {
      const int g = e / d, c = e % d;
      out.put(int64_t(r) * q_stride + (h0 + g) * d + c, combine(part, part.at32(b, h0 + g, 0, p.n_heads), chunks, d, c));
    }
  marks.mark();
  marks.flush();
}

// A block's shared memory in bytes for the prefill tiles (tensor cores): the K/V tile, then per
// tile row the queries, the scores, the weights and (m, l), both heads' channels, a zero row.
struct TileSmem {
  size_t q, sc, pw, ml, ch, zero, total;
  KVAUDIT_HD TileSmem(int d, int hpb) {
    q = size_t(kChunk) * half_ld(d) * 2;
    sc = q + size_t(kAttnTileRows) * kMmaRows * half_ld(d) * 2;
    pw = sc + size_t(kAttnTileRows) * hpb * kChunk * 4;
    ml = pw + size_t(kAttnTileRows) * kMmaRows * half_ld(kChunk) * 2;
    ch = ml + size_t(kAttnTileRows) * hpb * 2 * 4;
    zero = ch + 2 * sizeof(kv::KvChannel) * size_t(d);
    total = zero + 16;
  }
};

// Block (x, y): the prefill tile tiles[t0 + x] (up to kAttnTileRows consecutive rows of one sequence
// at consecutive positions, no window: every row's chunk z is keys 64z .. 64z + 63), heads y·hpb ..
// y·hpb + hpb - 1 of one KV head. Each chunk's keys and values are decoded ONCE for all the tile's
// rows (the row kernel decodes them again for every row: a prompt of n tokens decoded ~n/2 times).
// Per row, the arithmetic is attention_kernel's on tensor cores for that row alone: the same fp16
// queries, the same mma chains over the same k-steps (an mma's output row never mixes with
// another's), the same softmax over its own nk keys, and its weighted sums over ceil(nk / 16)
// k-steps whose keys past nk read a zero row (where the row kernel zeroes the tile): the same bits,
// so a row's result never depends on whether it came in a tile (tests/cuda: tiles against rows).
template <int D>
__global__ void __launch_bounds__(kThreads, 3) attention_tile_kernel(cpu::AttentionParams p, const float* __restrict__ q,
                                                                  const AttnRow* __restrict__ rows,
                                                                  const SlotKv* __restrict__ slots_kv,
                                                                  const AttnTile* __restrict__ tiles, int64_t t0,
                                                                  Partials part, Out out, int hpb) {
  pdl_trigger();
  pdl_wait();
  static_assert(kChunk == 8 * kWarps);
  const int HPB = hpb;
  extern __shared__ float4 smem4[];
  auto* smem = reinterpret_cast<unsigned char*>(smem4);
  const int d = D > 0 ? D : p.head_dim;
  const TileSmem lay(d, HPB);
  const Tile<__half> tile{reinterpret_cast<__half*>(smem), half_ld(d)};  // the chunk's keys, then values
  auto* qh = reinterpret_cast<__half*>(smem + lay.q);    // [kAttnTileRows][kMmaRows][half_ld(d)]
  float* sc = reinterpret_cast<float*>(smem + lay.sc);   // [kAttnTileRows][HPB][kChunk]
  auto* pw = reinterpret_cast<__half*>(smem + lay.pw);   // [kAttnTileRows][kMmaRows][half_ld(kChunk)]
  float* ml = reinterpret_cast<float*>(smem + lay.ml);   // [kAttnTileRows][HPB][2]
  auto* kch = reinterpret_cast<kv::KvChannel*>(smem + lay.ch);
  kv::KvChannel* vch = kch + d;
  const auto* zero_row = reinterpret_cast<const __half*>(smem + lay.zero);  // 8 fp16 zeros
  const AttnTile tl = tiles[t0 + blockIdx.x];
  const int nr = int(tl.count);
  const int h0 = int(blockIdx.y) * HPB;
  const AttnRow first = rows[tl.first];  // row i of the tile: call row tl.first + i, position first.pos + i
  const int64_t chunks_last = (first.pos + nr + kChunk - 1) / kChunk;  // the last row's chunks
  const int64_t q_stride = int64_t(p.n_heads) * d;
  const int kv_h = h0 / (p.n_heads / p.n_kv_heads);
  __shared__ alignas(KvReader) unsigned char reader_bytes[2 * sizeof(KvReader)];
  auto* readers = reinterpret_cast<KvReader*>(reader_bytes);
  if (threadIdx.x < 2) {
    const SlotKv& skv = slots_kv[first.slot];
    new (&readers[threadIdx.x]) KvReader(threadIdx.x == 0 ? skv.k : skv.v, first.len, kv_h, d);
  }
  for (int e = threadIdx.x; e < kAttnTileRows * kMmaRows * d; e += kThreads) {
    const int i = e / (kMmaRows * d), g = (e / d) % kMmaRows, c = e % d;
    const float x = i < nr && g < HPB ? q[(tl.first + i) * q_stride + int64_t(h0 + g) * d + c] : 0.0f;
    qh[(i * kMmaRows + g) * half_ld(d) + c] = __float2half_rn(x);
  }
  for (int e = threadIdx.x; e < kAttnTileRows * kMmaRows * kChunk; e += kThreads)
    pw[(e / kChunk) * half_ld(kChunk) + e % kChunk] = __float2half_rn(0.0f);
  if (threadIdx.x < 8) const_cast<__half*>(zero_row)[threadIdx.x] = __float2half_rn(0.0f);
  __syncthreads();
  const KvReader& k = readers[0];
  const KvReader& v = readers[1];
  head_channels(k, v, kch, vch, d);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int frag_row = lane / 4, frag_col = 2 * (lane % 4);
  // Row i's keys in chunk z (0: the chunk is past its position) and its chunk count.
  const auto keys_in = [&](int i, int64_t z) { return int(min(int64_t(kChunk), max(int64_t(0), first.pos + i + 1 - z * kChunk))); };
  const auto chunks_of = [&](int i) { return (first.pos + i + kChunk) / kChunk; };
  const auto put = [&](int i, int g, int c, float a, int64_t z) {  // row i, head g, channel c of chunk z
    const int64_t r = tl.first + i;
    if (chunks_of(i) == 1) {
      out.put(r * q_stride + int64_t(h0 + g) * d + c, __fdiv_rn(a, ml[2 * (i * HPB + g) + 1]));
    } else {
      const int64_t pi = part.at(int64_t(blockIdx.x) * kAttnTileRows + i, h0 + g, z, p.n_heads);
      part.o[pi * d + c] = a;
      if (c == 0) {
        part.ml[2 * pi] = ml[2 * (i * HPB + g)];
        part.ml[2 * pi + 1] = ml[2 * (i * HPB + g) + 1];
      }
    }
  };
  __shared__ kv::KvRow krows[kChunk], vrows[kChunk];
  for (int64_t z = 0; z < chunks_last; ++z) {
    const int64_t jb = z * kChunk;
    const int nk_max = keys_in(nr - 1, z);
    for (int t = threadIdx.x; t < nk_max; t += kThreads) {
      krows[t] = k.row(jb + t);
      vrows[t] = v.row(jb + t);
    }
    __syncthreads();
    load_tile(k, krows, kch, jb, nk_max, d, tile);
    __syncthreads();
    // Scores: this warp's keys n0 .. n0 + 7 for every row that has them, heads as the mma's rows.
    const int n0 = 8 * warp;
    for (int i = 0; i < nr; ++i) {
      const int nk = keys_in(i, z);
      if (n0 >= nk) continue;
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      scores_tc(acc, qh + (i * kMmaRows + frag_row) * half_ld(d) + frag_col, tile.at(n0 + frag_row, frag_col), d);
      if (frag_row < HPB)
        for (int e = 0; e < 2; ++e)
          if (n0 + frag_col + e < nk) sc[(i * HPB + frag_row) * kChunk + n0 + frag_col + e] = scaled_score(p, acc[e]);
    }
    __syncthreads();
    // The softmax of each (row, head) by one warp, attention_kernel's arithmetic over the row's keys.
    for (int pr = warp; pr < nr * HPB; pr += kWarps) {
      const int i = pr / HPB, g = pr % HPB;
      const int nk = keys_in(i, z);
      if (nk > 0) chunk_softmax<true>(sc + pr * kChunk, nk, pw + (i * kMmaRows + g) * half_ld(kChunk), ml + 2 * pr, lane);
    }
    load_tile(v, vrows, vch, jb, nk_max, d, tile);
    __syncthreads();
    // exp(s - m) @ v per row over its own k-steps; a lane whose key is past the row's keys points the
    // transposing load at the zero row.
    for (int c0 = 8 * warp; c0 < d; c0 += 8 * kWarps) {
      for (int i = 0; i < nr; ++i) {
        const int nk = keys_in(i, z);
        if (nk == 0) continue;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        weighted_sums_tc(acc, pw + (i * kMmaRows + frag_row) * half_ld(kChunk) + frag_col, tile, nk, c0, zero_row, lane);
        if (frag_row < HPB) {
          put(i, frag_row, c0 + frag_col, acc[0], z);
          put(i, frag_row, c0 + frag_col + 1, acc[1], z);
        }
      }
    }
    __syncthreads();  // the tile, sc, pw and ml are the next chunk's
  }
  // Rows of several chunks: combined here (this block wrote all their partials).
  for (int e = threadIdx.x; e < nr * HPB * d; e += kThreads) {
    const int i = e / (HPB * d), g = (e / d) % HPB, c = e % d;
    const int64_t chunks = chunks_of(i);
    if (chunks == 1) continue;
    const int64_t b = int64_t(blockIdx.x) * kAttnTileRows + i;
    out.put((tl.first + i) * q_stride + int64_t(h0 + g) * d + c,
            combine(part, int(part.at(b, h0 + g, 0, p.n_heads)), int(chunks), d, c));
  }
}

template <int D>
void launch_tiles(int hpb, const cpu::AttentionParams& p, size_t smem, const float* q, const AttnRow* rows,
                  const SlotKv* slots_kv, const AttnTile* tiles, int64_t t0, int64_t n_tiles, Partials part, Out out) {
  static size_t allowed = 0;
  if (smem > allowed) {
    KVAUDIT_CUDA_CHECK(cudaFuncSetAttribute(attention_tile_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    allowed = smem;
  }
  launch_pdl(attention_tile_kernel<D>, dim3(unsigned(n_tiles), unsigned(p.n_heads / hpb)), kThreads, smem, p, q, rows,
             slots_kv, tiles, t0, part, out, hpb);
}

template <int HPB_T, bool TC, int D>
void launch(int hpb, const cpu::AttentionParams& p, size_t smem, const float* q, const AttnRow* rows,
            const SlotKv* slots_kv, int64_t n_rows, Partials part, int span, RowOrder order, Out out,
            unsigned* arrived) {
  const unsigned zs = unsigned((part.max_chunks + span - 1) / span);
  // Dynamic shared memory this instantiation was opened to: set before the first launch too, as the
  // static part (the rows, the readers) counts against the default 48 KiB (head_dim 256, fp16).
  static size_t allowed = 0;
  if (smem > allowed) {
    KVAUDIT_CUDA_CHECK(
        cudaFuncSetAttribute(attention_kernel<HPB_T, TC, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    allowed = smem;
  }
  // KVAUDIT_CUDA_ATTN_EARLY=0: every block waits first (the A/B of the early decode; the same bits)
  static const bool early_on = env_flag("KVAUDIT_CUDA_ATTN_EARLY", true);
  launch_pdl(attention_kernel<HPB_T, TC, D>, dim3(unsigned(n_rows), unsigned(p.n_heads / hpb), zs), kThreads, smem, p,
             q, rows, slots_kv, part, span, order, out, arrived, hpb, early_on);
}

// fp32: an instantiation per heads-per-block; tensor cores: per common head_dim.
void launch_fp32(int hpb, const cpu::AttentionParams& p, size_t smem, const float* q, const AttnRow* rows,
                 const SlotKv* slots_kv, int64_t n_rows, Partials part, int span, RowOrder order, Out out,
                 unsigned* arrived) {
  const auto go = [&]<int HPB>() {
    launch<HPB, false, 0>(hpb, p, smem, q, rows, slots_kv, n_rows, part, span, order, out, arrived);
  };
  switch (hpb) {
    case 1: go.template operator()<1>(); break;
    case 2: go.template operator()<2>(); break;
    case 3: go.template operator()<3>(); break;
    case 4: go.template operator()<4>(); break;
    case 5: go.template operator()<5>(); break;
    case 6: go.template operator()<6>(); break;
    case 7: go.template operator()<7>(); break;
    default: go.template operator()<8>(); break;
  }
}

void launch_tc(int hpb, const cpu::AttentionParams& p, size_t smem, const float* q, const AttnRow* rows,
               const SlotKv* slots_kv, int64_t n_rows, Partials part, int span, RowOrder order, Out out,
               unsigned* arrived) {
  switch (p.head_dim) {
    case 64: launch<0, true, 64>(hpb, p, smem, q, rows, slots_kv, n_rows, part, span, order, out, arrived); break;
    case 128: launch<0, true, 128>(hpb, p, smem, q, rows, slots_kv, n_rows, part, span, order, out, arrived); break;
    default: launch<0, true, 0>(hpb, p, smem, q, rows, slots_kv, n_rows, part, span, order, out, arrived); break;
  }
}

// The partial sums of rows of several chunks, shared by every launch of the process (one stream).
DeviceBuffer<float>& partial_scratch() {
  static DeviceBuffer<float> scratch;
  return scratch;
}

// The prefill tiles of a launch (attention_cuda): the most heads of one KV head per block (a
// divisor of the group), tiles in passes whose partial sums fit the scratch.
void attention_tiles(const cpu::AttentionParams& p, const float* q, const AttnRow* rows, const SlotKv* slots_kv,
                     const AttnTiles& tiles, int64_t max_pos, Out out) {
  const int d = p.head_dim, group = p.n_heads / p.n_kv_heads;
  int hpb = 1;
  for (int h = std::min(group, kMaxHeadsPerBlock); h >= 1; --h)
    if (group % h == 0) {
      hpb = h;
      break;
    }
  const int64_t max_chunks = (max_pos + 1 + kChunk - 1) / kChunk;
  const size_t smem = TileSmem(d, hpb).total;
  const int smem_max = device_limits().smem_optin;
  if (smem + 4096 > size_t(smem_max))
    throw_runtime("CUDA attention: head_dim " + std::to_string(d) + " needs " + std::to_string(smem) +
                  " bytes of shared memory per prefill tile, over the device's " + std::to_string(smem_max));
  const int64_t per_tile = max_chunks > 1 ? int64_t(kAttnTileRows) * p.n_heads * max_chunks * (d + 2) : 0;
  const int64_t pass = per_tile > 0 ? std::clamp<int64_t>(kMaxPartialFloats / per_tile, 1, 1 << 30) : tiles.n_tiles;
  DeviceBuffer<float>& scratch = partial_scratch();
  if (per_tile > 0 && scratch.size() < size_t(std::min(pass, tiles.n_tiles) * per_tile))
    scratch.resize(size_t(std::min(pass, tiles.n_tiles) * per_tile));
  for (int64_t t0 = 0; t0 < tiles.n_tiles; t0 += pass) {
    const int64_t nt = std::min(pass, tiles.n_tiles - t0);
    const Partials part{scratch.data(), scratch.data() + nt * kAttnTileRows * int64_t(p.n_heads) * max_chunks * d,
                        max_chunks};
    switch (d) {
      case 64: launch_tiles<64>(hpb, p, smem, q, rows, slots_kv, tiles.tiles, t0, nt, part, out); break;
      case 128: launch_tiles<128>(hpb, p, smem, q, rows, slots_kv, tiles.tiles, t0, nt, part, out); break;
      default: launch_tiles<0>(hpb, p, smem, q, rows, slots_kv, tiles.tiles, t0, nt, part, out); break;
    }
  }
}

}  // namespace

int64_t attention_chunks(int64_t max_pos) { return (max_pos + kChunk) / kChunk; }

void attention_cuda(const cpu::AttentionParams& p, const float* q, const AttnRow* rows, const SlotKv* slots_kv,
                    int64_t n_rows, int64_t max_pos, float* out, const int64_t* order, AttnMath math,
                    uint16_t* out_bf16, const AttnTiles* tiles) {
  if (n_rows == 0) return;
  if (tiles != nullptr && tiles->n_tiles > 0 && p.window == 0 && math == AttnMath::kFp16TensorCores &&
      tensor_cores_fit(p.head_dim)) {
    // The rows no tile holds go to the row kernel, the tiles to theirs.
    if (tiles->n_rest > 0)
      attention_cuda(p, q, rows, slots_kv, tiles->n_rest, max_pos, out, tiles->rest, math, out_bf16, nullptr);
    attention_tiles(p, q, rows, slots_kv, *tiles, max_pos, Out{out, out_bf16});
    return;
  }
  const int d = p.head_dim;
  const int64_t max_keys = p.window > 0 ? std::min<int64_t>(max_pos + 1, p.window) : max_pos + 1;
  const int64_t max_chunks = (max_keys + kChunk - 1) / kChunk;
  if (max_chunks > 65535)
    throw_runtime("CUDA attention: " + std::to_string(max_keys) + " visible keys are over the " +
                  std::to_string(int64_t(65535) * kChunk) + " a launch can split");
  const int sms = device_limits().sms, smem_max = device_limits().smem_optin;
  // The most heads of one KV head per block (a divisor of the group) while the blocks still fill
  // the device four times over (a batch-1 decode of a short context keeps a block per head).
  const int group = p.n_heads / p.n_kv_heads;
  int hpb = 1;
  for (int h = std::min(group, kMaxHeadsPerBlock); h > 1; --h)
    if (group % h == 0 && n_rows * max_chunks * (p.n_heads / h) >= 4 * int64_t(sms)) {
      hpb = h;
      break;
    }
  // Chunks per block: one while the blocks would not fill the device four times over (a decode of
  // a few rows), else as many as keep it filled (a large batch: no second launch).
  const int64_t head_blocks = n_rows * (p.n_heads / hpb);
  const int span = int(std::clamp<int64_t>(max_chunks * head_blocks / (4 * int64_t(sms)), 1, max_chunks));
  const bool tc = math == AttnMath::kFp16TensorCores && tensor_cores_fit(d);
  const size_t smem = SmemLayout(d, hpb, tc).total;
  if (smem + 4096 > size_t(smem_max))
    throw_runtime("CUDA attention: head_dim " + std::to_string(d) + " needs " + std::to_string(smem) +
                  " bytes of shared memory per block, over the device's " + std::to_string(smem_max));
  // Rows in passes whose partial sums fit the scratch (a long prompt's prefill).
  DeviceBuffer<float>& scratch = partial_scratch();
  const int64_t per_row = max_chunks > 1 ? int64_t(p.n_heads) * max_chunks * (d + 2) : 0;
  const int64_t pass = per_row > 0 ? std::clamp<int64_t>(kMaxPartialFloats / per_row, 1, 1 << 30) : n_rows;
  if (per_row > 0) scratch.resize(size_t(std::min(pass, n_rows) * per_row));
  // One arrival count per (row of a pass, head block), zero between launches (the kernel's end).
  static DeviceBuffer<unsigned> arrived;
  const size_t counts = size_t(std::min(pass, n_rows) * (p.n_heads / hpb));
  if (span < max_chunks && counts > arrived.size()) {
    arrived.resize(counts);
    KVAUDIT_CUDA_CHECK(cudaMemset(arrived.data(), 0, counts * sizeof(unsigned)));
  }
  for (int64_t r0 = 0; r0 < n_rows; r0 += pass) {
    const int64_t nr = std::min(pass, n_rows - r0);
    Partials part{scratch.data(), scratch.data() + nr * int64_t(p.n_heads) * max_chunks * d, max_chunks};
    const RowOrder ord{order, r0};
    const Out o{out, out_bf16};
    if (tc) launch_tc(hpb, p, smem, q, rows, slots_kv, nr, part, span, ord, o, arrived.data());
    else launch_fp32(hpb, p, smem, q, rows, slots_kv, nr, part, span, ord, o, arrived.data());
  }
}

}  // namespace kvaudit::engine::cuda
