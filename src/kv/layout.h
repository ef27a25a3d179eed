// A layer's stored K or V as plain data a kernel can read (issue 10), and the reference formulas
// of SPEC.md §3 for the schemes stored that way, written once for host and device: no intrinsics,
// no library calls a kernel cannot make. The CPU quantizers (kv/schemes/int_affine.cc, fp8.cc,
// llama_cpp.cc via kv/ggml_block.h) call these same functions, so a code computed on the GPU is the
// CPU's code by construction, not by a second transcription.
//
// Stored row: `width` values, each `bits` wide, packed LSB-first into 32-bit words (value i at bit
// i·bits of the row; a row starts on a word), then `row_params()` fp32 parameters. `tensor` int
// keeps one (scale, zero, qscale) triple for the whole sequence instead of per-row parameters;
// `channel` int keeps per-channel (scale, zero) per block of `block_rows` rows. With a residual
// window (R > 0) rows [quantized_rows(size), size) are fp16 values in a ring of R rows (row j at
// slot j mod R) until they are quantized (kv/quant_cache.h states when).
#pragma once
#include <cstdint>

#include <cmath>

#include "core/bits.h"
#include "core/half.h"
#include "kv/ggml_block.h"

namespace kvaudit::kv {

enum class LayoutKind : uint8_t {
  kPlain,  // fp32 as computed (the 16-bit baseline)
  kBf16,   // each value rounded to bfloat16, 16 bits
  kInt,    // intB affine codes, per-set fp32 (s, z), one tensor triple, or per channel and block
  kFp8,    // fp8 e4m3/e5m2 codes of x / s; s fixed or per row
  kGgml,   // llama.cpp blocks of 32 (kv/ggml_block.h): codes, per block d [and m]
};

struct KvLayout {
  LayoutKind kind = LayoutKind::kPlain;
  int width = 0;        // values per row (n_kv_heads · head_dim)
  int bits = 32;        // bits per stored value
  int set_len = 0;      // int: values per (s, z) set: the row (token), head_dim (head), N (group)
  bool sym = false;     // int
  bool tensor = false;  // int: (s, z) fitted on the first append, kept for the sequence
  bool e5m2 = false;    // fp8: e5m2, else e4m3
  float fp8_scale = 0;  // fp8: the fixed scale; 0 = dynamic, per row max|x| / max (a row parameter)
  int block_rows = 0;   // int `channel`: N rows per (s, z) block, fitted per channel (KIVI keys)
  int residual = 0;     // R: the newest rows stay fp16 in a ring of R rows (0: quantized on write)
  io::GgmlType ggml = io::GgmlType::Q8_0;  // kGgml
  int pair_dim = 0;     // kGgml keys of llama.cpp's interleaved order: head_dim (llama_cpp_key_order)

  KVAUDIT_HD bool channel() const { return kind == LayoutKind::kInt && block_rows > 0; }
  KVAUDIT_HD int n_sets() const {
    if (kind == LayoutKind::kGgml) return width / kGgmlBlock;
    return kind == LayoutKind::kInt && !tensor && !channel() ? width / set_len : 0;
  }
  // fp32 parameters per row: int, scales of each set then (asym) zero points; fp8 dynamic: s;
  // ggml, d of each block then (q4_1, q5_1) m.
  KVAUDIT_HD int row_params() const {
    if (kind == LayoutKind::kGgml) return n_sets() * (ggml_has_min(ggml) ? 2 : 1);
    if (kind == LayoutKind::kInt) return n_sets() * (sym ? 1 : 2);
    return kind == LayoutKind::kFp8 && fp8_scale == 0 ? 1 : 0;
  }
  // `channel`: fp32 parameters per block of block_rows rows: [width] scales, then [width] zeros (asym).
  KVAUDIT_HD int block_params() const { return channel() ? width * (sym ? 1 : 2) : 0; }
  KVAUDIT_HD int row_words() const { return int((int64_t(width) * bits + 31) / 32); }
  // Bytes one quantized row occupies (codes + its own parameters; not a `channel` block's).
  KVAUDIT_HD int64_t row_bytes() const { return 4 * int64_t(row_words() + row_params()); }
  // How many of `size` rows are quantized (SPEC.md §3 streaming, kv/quant_cache.cc): `channel`
  // whole windows of R rows; token-wise schemes all but the newest R.
  KVAUDIT_HD int64_t quantized_rows(int64_t size) const {
    if (residual == 0) return size;
    if (channel()) return size / residual * residual;
    return size > residual ? size - residual : 0;
  }
  // Position in the stored row of channel c (kGgml keys in llama.cpp's order; else c itself):
  // llama_cpp_key_order puts channel (p % 2)·D/2 + p/2 of a head at position p.
  KVAUDIT_HD int position(int c) const {
    if (pair_dim == 0) return c;
    const int h = c / pair_dim, i = c % pair_dim, half = pair_dim / 2;
    return h * pair_dim + (i < half ? 2 * i : 2 * (i - half) + 1);
  }
  // The channel at position p (the inverse of position()).
  KVAUDIT_HD int channel_at(int p) const {
    if (pair_dim == 0) return p;
    const int h = p / pair_dim, i = p % pair_dim;
    return h * pair_dim + (i % 2) * (pair_dim / 2) + i / 2;
  }
};

// ---------------------------------------------------------------- scalar helpers

using kvaudit::bits_float;
using kvaudit::float_bits;
// Round half to even (std::nearbyint in the default rounding mode; torch.round).
KVAUDIT_HD inline float round_even(float x) {
#if defined(__CUDA_ARCH__)
  return rintf(x);
#else
  return std::nearbyint(x);
#endif
}
KVAUDIT_HD inline bool finite(float x) { return (float_bits(x) & 0x7f800000u) != 0x7f800000u; }
KVAUDIT_HD inline float abs_f(float x) { return bits_float(float_bits(x) & 0x7fffffffu); }
// 2^e for a normal exponent, exactly.
KVAUDIT_HD inline float pow2(int e) { return bits_float(uint32_t(127 + e) << 23); }

// ---------------------------------------------------------------- intB affine (SPEC.md §3)

struct AffineParams {
  float scale = 0;   // s as stored (fp32; == qscale unless s overflowed), used to dequantize
  float zero = 0;    // z (asym; an integer in [0, 2^B-1]); 0 for sym
  float qscale = 0;  // s used to compute z and the codes
};

inline constexpr float kAsymScaleFloor = 1e-8f;      // asymmetric s floored at 1e-8 (the paper's clamp)
inline constexpr float kMaxScale = 3.40282347e+38f;  // a stored scale is kept finite

KVAUDIT_HD inline int affine_qmin(int bits, bool sym) { return sym ? -(1 << (bits - 1)) : 0; }
KVAUDIT_HD inline int affine_qmax(int bits, bool sym) { return sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }
KVAUDIT_HD inline int affine_code_offset(int bits, bool sym) { return sym ? (1 << (bits - 1)) : 0; }

// sym: s = max|x| / (2^(B-1) - 1); asym: s = max((max - min) / (2^B - 1), 1e-8), z = clamp(round(-min/s),
// 0, 2^B-1). The stored s is fp32 (the research code's fp32 hooks), kept finite.
KVAUDIT_HD inline AffineParams affine_fit_range(int bits, bool sym, float lo, float hi) {
  AffineParams p;
  const float qmax = float(affine_qmax(bits, sym));
  if (sym) {
    const float a = abs_f(lo), b = abs_f(hi);
    p.qscale = (a < b ? b : a) / qmax;
    p.scale = finite(p.qscale) ? p.qscale : kMaxScale;
    return p;
  }
  const float s = (hi - lo) / qmax;
  p.qscale = s < kAsymScaleFloor ? kAsymScaleFloor : s;
  p.scale = finite(p.qscale) ? p.qscale : kMaxScale;
  const float z = round_even(-lo / p.qscale);
  p.zero = z > qmax ? qmax : (z >= 0 ? z : 0.0f);
  return p;
}

// q = clamp(round(x/s) [+ z], qmin, qmax), stored as q + code_offset in [0, 2^B); an all-zero set
// (s = 0) stores the offset; NaN saturates low.
KVAUDIT_HD inline uint8_t affine_quantize(int bits, bool sym, float x, AffineParams p) {
  const int off = affine_code_offset(bits, sym);
  if (p.qscale == 0) return uint8_t(off);
  float t = x / p.qscale;
  if (!sym) t = t + p.zero;
  float q = round_even(t);
  if (!(q >= float(affine_qmin(bits, sym)))) q = float(affine_qmin(bits, sym));
  if (q > float(affine_qmax(bits, sym))) q = float(affine_qmax(bits, sym));
  return uint8_t(int(q) + off);
}

// x' = (q - z)·s (asym) or q·s (sym), from the stored code; zc: the code of zero (affine_zero_code).
KVAUDIT_HD inline int affine_zero_code(int bits, bool sym, float zero) {
  return sym ? affine_code_offset(bits, sym) : int(zero);
}
KVAUDIT_HD inline float affine_value(uint8_t code, int zc, float scale) { return float(int(code) - zc) * scale; }
KVAUDIT_HD inline float affine_dequantize(int bits, bool sym, uint8_t code, float scale, float zero) {
  return affine_value(code, affine_zero_code(bits, sym, zero), scale);
}

// ---------------------------------------------------------------- fp8 (OCP e4m3 "fn", e5m2)

struct Fp8Format {
  int exp_bits, man_bits, bias;
  uint8_t max_code;   // largest finite magnitude code
  uint8_t nan_code;   // magnitude code written for NaN
  float max_value;    // 448 or 57344
  bool has_inf;       // e5m2: exponent all ones, mantissa 0 = inf
};
// By value, so that device code never refers to a host constant.
KVAUDIT_HD constexpr Fp8Format fp8_format(bool e5m2) {
  return e5m2 ? Fp8Format{5, 2, 15, 0x7b, 0x7f, 57344.0f, true} : Fp8Format{4, 3, 7, 0x7e, 0x7f, 448.0f, false};
}
inline constexpr Fp8Format kE4M3 = fp8_format(false);
inline constexpr Fp8Format kE5M2 = fp8_format(true);

// RNE with saturation to the largest finite value (inf included), NaN -> NaN: the float's mantissa
// rounded to M bits where the result is normal in fp8, else exact power-of-two scaling into units of
// the smallest subnormal and RNE (fp8_encode_ref states the same definition arithmetically).
KVAUDIT_HD inline uint8_t fp8_encode(float x, const Fp8Format& f) {
  uint32_t u = float_bits(x);
  const uint8_t sign = uint8_t((u >> 24) & 0x80);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return sign | f.nan_code;
  if (u >= uint32_t(127 + 1 - f.bias) << 23) {
    const uint32_t shift = uint32_t(23 - f.man_bits);
    u += (1u << (shift - 1)) - 1 + ((u >> shift) & 1u);
    const int32_t code = int32_t(u >> shift) - int32_t(uint32_t(127 - f.bias) << f.man_bits);
    return sign | uint8_t(code > f.max_code ? f.max_code : code);
  }
  return sign | uint8_t(round_even(bits_float(u) * pow2(f.bias - 1 + f.man_bits)));
}

// E = 0: M·2^(1-bias-M); else (1 + M/2^M)·2^(E-bias); e4m3 S.1111.111 and e5m2 E = 31, M != 0 are
// NaN; e5m2 E = 31, M = 0 is ±inf.
KVAUDIT_HD inline float fp8_decode(uint8_t code, const Fp8Format& f) {
  const uint32_t sign = uint32_t(code & 0x80) << 24;
  const int e = (code & 0x7f) >> f.man_bits, m = code & ((1 << f.man_bits) - 1);
  const int e_max = (1 << f.exp_bits) - 1;
  if ((!f.has_inf && (code & 0x7f) == 0x7f) || (f.has_inf && e == e_max && m != 0)) return bits_float(sign | 0x7fc00000u);
  if (f.has_inf && e == e_max) return bits_float(sign | 0x7f800000u);
  const float v = e == 0 ? float(m) * pow2(1 - f.bias - f.man_bits)
                         : (1.0f + float(m) / float(1 << f.man_bits)) * pow2(e - f.bias);
  return bits_float(sign | float_bits(v));
}

// ---------------------------------------------------------------- packed rows

// Code i of a row packed at `bits` per value (bits <= 16: a code spans at most two words).
KVAUDIT_HD inline uint32_t unpack_code(const uint32_t* words, int64_t i, int bits) {
  const int64_t at = i * bits;
  const int64_t w = at >> 5;
  const int sh = int(at & 31);
  uint32_t v = words[w] >> sh;
  if (sh + bits > 32) v |= words[w + 1] << (32 - sh);
  return bits == 32 ? v : v & ((1u << bits) - 1u);
}

// Where channel c's code and parameters sit in a stored row: computed once per channel by a kernel
// that reads the channel over many rows (the divisions stay out of its inner loop).
struct KvChannel {
  int code;   // index of the channel's code in the row (position(c))
  int scale;  // its scale among the row's (block's, the tensor's) parameters; -1: none
  int zero;   // its zero point or min; -1: none
};
KVAUDIT_HD inline KvChannel kv_channel(const KvLayout& L, int c) {
  switch (L.kind) {
    case LayoutKind::kPlain:
    case LayoutKind::kBf16: return {c, -1, -1};
    case LayoutKind::kInt: {
      if (L.tensor) return {c, 0, L.sym ? -1 : 1};
      if (L.channel()) return {c, c, L.sym ? -1 : L.width + c};
      const int s = c / L.set_len;
      return {c, s, L.sym ? -1 : L.width / L.set_len + s};
    }
    case LayoutKind::kFp8: return {c, L.fp8_scale > 0 ? -1 : 0, -1};
    case LayoutKind::kGgml: {
      const int p = L.position(c), b = p / kGgmlBlock;
      return {p, b, ggml_has_min(L.ggml) ? L.n_sets() + b : -1};
    }
  }
  return {c, -1, -1};
}

// The parameters channel ch's codes share in one row (block, tensor) of kind K, loaded once for the
// channels of a set (kv_set_value): scale, zero point or min, and int's code of zero.
struct KvSet {
  float scale = 1.0f, zero = 0.0f;
  int zc = 0;
};
template <LayoutKind K>
KVAUDIT_HD inline KvSet kv_set(const KvLayout& L, const KvChannel& ch, const float* params) {
  if constexpr (K == LayoutKind::kInt) {
    const float z = ch.zero >= 0 ? params[ch.zero] : 0.0f;
    return {params[ch.scale], z, affine_zero_code(L.bits, L.sym, z)};
  } else if constexpr (K == LayoutKind::kFp8) {
    return {ch.scale < 0 ? L.fp8_scale : params[ch.scale], 0.0f, 0};
  } else if constexpr (K == LayoutKind::kGgml) {
    return {params[ch.scale], ch.zero >= 0 ? params[ch.zero] : 0.0f, 0};
  } else {
    return {};
  }
}
// The value of a stored code (unpacked) of kind K under its set's parameters.
template <LayoutKind K>
KVAUDIT_HD inline float kv_set_value(const KvLayout& L, const KvSet& p, uint32_t code) {
  if constexpr (K == LayoutKind::kPlain) {
    return bits_float(code);
  } else if constexpr (K == LayoutKind::kBf16) {
    return bf16_to_float(uint16_t(code));
  } else if constexpr (K == LayoutKind::kInt) {
    return affine_value(uint8_t(code), p.zc, p.scale);
  } else if constexpr (K == LayoutKind::kFp8) {
    const float v = fp8_decode(uint8_t(code), fp8_format(L.e5m2));
    return p.scale == 1.0f ? v : v * p.scale;
  } else {
    return ggml_dequantize(L.ggml, uint8_t(code), p.scale, p.zero);
  }
}
// The value of channel ch's stored code (unpacked) in a row of kind K: what attention reads (the
// CPU cache's rows()). params: the row's parameters, the tensor triple, or the row's `channel`
// block's. A kernel that holds one kind per block calls this with K fixed, so its inner loop
// carries no switch, and may unpack several codes at once (and load a set's parameters once).
template <LayoutKind K>
KVAUDIT_HD inline float kv_code_value(const KvLayout& L, const KvChannel& ch, uint32_t code, const float* params) {
  return kv_set_value<K>(L, kv_set<K>(L, ch, params), code);
}
// Bits per stored value of kind K.
template <LayoutKind K>
KVAUDIT_HD inline int kv_code_bits(const KvLayout& L) {
  return K == LayoutKind::kPlain ? 32 : K == LayoutKind::kBf16 ? 16 : K == LayoutKind::kFp8 ? 8 : L.bits;
}
// The dequantized value of a channel (kv_channel) of one stored row of kind K.
template <LayoutKind K>
KVAUDIT_HD inline float kv_decode_as(const KvLayout& L, const KvChannel& ch, const uint32_t* words, const float* params) {
  if constexpr (K == LayoutKind::kPlain) return bits_float(words[ch.code]);
  return kv_code_value<K>(L, ch, unpack_code(words, ch.code, kv_code_bits<K>(L)), params);
}
KVAUDIT_HD inline float kv_decode(const KvLayout& L, const KvChannel& ch, const uint32_t* words, const float* params) {
  switch (L.kind) {
    case LayoutKind::kPlain: return kv_decode_as<LayoutKind::kPlain>(L, ch, words, params);
    case LayoutKind::kBf16: return kv_decode_as<LayoutKind::kBf16>(L, ch, words, params);
    case LayoutKind::kInt: return kv_decode_as<LayoutKind::kInt>(L, ch, words, params);
    case LayoutKind::kFp8: return kv_decode_as<LayoutKind::kFp8>(L, ch, words, params);
    case LayoutKind::kGgml: return kv_decode_as<LayoutKind::kGgml>(L, ch, words, params);
  }
  return 0;
}

// The value of channel c of one stored row (kv_decode at kv_channel(c)).
KVAUDIT_HD inline float kv_value(const KvLayout& L, const uint32_t* words, const float* params, int c) {
  return kv_decode(L, kv_channel(L, c), words, params);
}

// Where one sequence's stored K or V of one layer lives (the device's buffers, or a test's).
struct KvStore {
  const uint32_t* words;     // [rows, row_words]
  const float* params;       // [rows, row_params]; the tensor triple; `channel`: [blocks, block_params]
  const uint16_t* residual;  // [R, width] fp16 ring (R > 0)
  int64_t quantized;         // rows [0, quantized) are codes, the rest in the ring
};

// Row j of a sequence's stored K or V: its codes and parameters, or (ring) its fp16 values.
struct KvRow {
  const uint32_t* words;
  const float* params;
  const uint16_t* ring;  // non-null: the row is in the residual window, values at ring[c]
};
// A layout's strides, computed once by a kernel that walks many rows.
struct KvStrides {
  int row_words, row_params, block_params;
};
KVAUDIT_HD inline KvStrides kv_strides(const KvLayout& L) { return {L.row_words(), L.row_params(), L.block_params()}; }
KVAUDIT_HD inline KvRow kv_row(const KvLayout& L, const KvStrides& st, const KvStore& s, int64_t j) {
  // Positions fit an int (32-bit division is the cheap one on a GPU).
  if (j >= s.quantized) return {nullptr, nullptr, s.residual + int64_t(int(j) % L.residual) * L.width};
  const float* params = L.tensor ? s.params
                        : L.channel() ? s.params + int64_t(int(j) / L.block_rows) * st.block_params
                                      : s.params + j * st.row_params;
  return {s.words + j * st.row_words, params, nullptr};
}
KVAUDIT_HD inline float kv_row_value(const KvLayout& L, const KvRow& r, int c, const KvChannel& ch) {
  return r.ring ? fp16_to_float(r.ring[c]) : kv_decode(L, ch, r.words, r.params);
}

// The value attention reads for channel c of row j (what the CPU cache's rows() holds).
KVAUDIT_HD inline float kv_stored_value(const KvLayout& L, const KvStore& s, int64_t j, int c) {
  return kv_row_value(L, kv_row(L, kv_strides(L), s, j), c, kv_channel(L, c));
}

}  // namespace kvaudit::kv
