// A layer's stored K or V as plain data a kernel can read (issue 10), and the reference formulas
// of SPEC.md §3 for the schemes stored that way, written once for host and device: no intrinsics,
// no library calls a kernel cannot make. The CPU quantizers (kv/schemes/int_affine.cc, fp8.cc) call
// these same functions, so a code computed on the GPU is the CPU's code by construction, not by
// a second transcription.
//
// Stored row: `width` values, each `bits` wide, packed LSB-first into 32-bit words (value i at bit
// i·bits of the row; a row starts on a word), then `row_params()` fp32 parameters. `tensor` int
// keeps one (scale, zero, qscale) triple for the whole sequence instead of per-row parameters.
#pragma once
#include <cstdint>

#include <bit>
#include <cmath>

#if defined(__CUDACC__)
#define KVAUDIT_HD __host__ __device__
#else
#define KVAUDIT_HD
#endif

namespace kvaudit::kv {

enum class LayoutKind : uint8_t {
  kPlain,  // fp32 as computed (the 16-bit baseline)
  kBf16,   // each value rounded to bfloat16, 16 bits
  kInt,    // intB affine codes, per-set fp32 (s, z), or one tensor triple
  kFp8,    // fp8 e4m3/e5m2 codes of x / s; s fixed or per row
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

  KVAUDIT_HD int n_sets() const { return kind == LayoutKind::kInt && !tensor ? width / set_len : 0; }
  // fp32 parameters per row: int, scales of each set then (asym) zero points; fp8 dynamic: s.
  KVAUDIT_HD int row_params() const {
    if (kind == LayoutKind::kInt) return tensor ? 0 : n_sets() * (sym ? 1 : 2);
    return kind == LayoutKind::kFp8 && fp8_scale == 0 ? 1 : 0;
  }
  KVAUDIT_HD int row_words() const { return int((int64_t(width) * bits + 31) / 32); }
  // Bytes one stored row occupies (codes + parameters).
  KVAUDIT_HD int64_t row_bytes() const { return 4 * int64_t(row_words() + row_params()); }
};

// ---------------------------------------------------------------- scalar helpers

KVAUDIT_HD inline uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  return std::bit_cast<uint32_t>(x);
#endif
}
KVAUDIT_HD inline float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  return std::bit_cast<float>(u);
#endif
}
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

// bfloat16: nearest even; NaN stays a quiet NaN (core/half.h float_to_bf16).
KVAUDIT_HD inline uint16_t bf16_bits(float f) {
  uint32_t b = float_bits(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) return uint16_t((b >> 16) | 0x40);
  b += 0x7fffu + ((b >> 16) & 1u);
  return uint16_t(b >> 16);
}
KVAUDIT_HD inline float bf16_value(uint16_t h) { return bits_float(uint32_t(h) << 16); }

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

// x' = (q - z)·s (asym) or q·s (sym), from the stored code.
KVAUDIT_HD inline float affine_dequantize(int bits, bool sym, uint8_t code, float scale, float zero) {
  const int zc = sym ? affine_code_offset(bits, sym) : int(zero);
  return float(int(code) - zc) * scale;
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

// The dequantized value of channel c of one stored row: what attention reads (the CPU cache's
// rows()). params: the row's parameters, or the tensor triple.
KVAUDIT_HD inline float kv_value(const KvLayout& L, const uint32_t* words, const float* params, int c) {
  switch (L.kind) {
    case LayoutKind::kPlain: return bits_float(words[c]);
    case LayoutKind::kBf16: return bf16_value(uint16_t(unpack_code(words, c, 16)));
    case LayoutKind::kInt: {
      const uint8_t q = uint8_t(unpack_code(words, c, L.bits));
      if (L.tensor) return affine_dequantize(L.bits, L.sym, q, params[0], params[1]);
      const int s = c / L.set_len, n = L.width / L.set_len;
      return affine_dequantize(L.bits, L.sym, q, params[s], L.sym ? 0.0f : params[n + s]);
    }
    case LayoutKind::kFp8: {
      const float s = L.fp8_scale > 0 ? L.fp8_scale : params[0];
      const float v = fp8_decode(uint8_t(unpack_code(words, c, 8)), fp8_format(L.e5m2));
      return s == 1.0f ? v : v * s;
    }
  }
  return 0;
}

}  // namespace kvaudit::kv
