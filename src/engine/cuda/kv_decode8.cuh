// Eight consecutive codes of one stored row decoded at once on the device: the fast path beside
// kv/layout.h's reference formulas (kv_set / kv_set_value), which it must equal bit for bit (test:
// KvWriteCuda.AttentionReadsTheDecodedRows, attention over every stored layout against
// attention over the rows kv_stored_value decodes). Why a second path: attention spent ~37
// instructions per decoded value in the 4-code loop (a 64-bit window per 4 codes, a conversion
// instruction per value at an eighth of the FMA rate, fp8's branches); here one load serves 8 codes
// and every step is a full-rate instruction.
//
// The exact identities it rests on, for a code q < 2^23:
//   float(q) = bits_float(0x4B000000 | q) - 2^23, and (2^23 + q) - (2^23 + zc) = float(q - zc) exactly
//   (both operands and their difference are integers below 2^24), so (q - zc)·s and q8_0's int8(q)·d
//   (q ^ 0x80 is q + 128 mod 256) take one LOP3, one FADD and one FMUL;
//   an e5m2 code is the upper byte of an fp16 with the same value, and every e4m3 value is an fp16
//   normal (the hardware's e4m3x2 -> f16x2 conversion is exact), so fp8 is fp16 -> fp32 (exact).
// NaN codes (a model that already produced NaN) decode to a NaN whose payload may differ.
#pragma once
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "kv/layout.h"

namespace kvaudit::engine::cuda {

// Whether positions p .. p + 7 (p a multiple of 8) of every head of layout L decode through
// decode8: codes of 1, 2, 4, 8, 16 or 32 bits (8 of them in one or two aligned words), one parameter
// set per 8 positions or (int `channel`) per-channel parameters stored consecutively, and a formula
// decode8 has (not q5_x, not iq4_nl). d: head_dim.
KVAUDIT_HD inline bool octet_ok(const kv::KvLayout& L, int d) {
  if (d % 8 != 0 || L.width % 8 != 0 || (L.pair_dim != 0 && L.pair_dim % 8 != 0)) return false;
  switch (L.kind) {
    case kv::LayoutKind::kPlain:
    case kv::LayoutKind::kBf16:
    case kv::LayoutKind::kFp8: return true;
    case kv::LayoutKind::kInt:
      return (L.bits == 1 || L.bits == 2 || L.bits == 4 || L.bits == 8) &&
             (L.tensor || L.channel() || L.set_len % 8 == 0);
    case kv::LayoutKind::kGgml:
      return L.ggml == io::GgmlType::Q8_0 || L.ggml == io::GgmlType::Q4_0 || L.ggml == io::GgmlType::Q4_1;
  }
  return false;
}

__device__ __forceinline__ float magic_int(uint32_t q) { return __uint_as_float(0x4B000000u | q); }
constexpr float kMagic = 8388608.0f;  // 2^23

// Codes pos .. pos + 7 of a row at `bits` (1, 2, 4 or 8; pos a multiple of 8): codes 0-3 in lo,
// 4-7 in hi, each at bit i·bits.
__device__ __forceinline__ void codes8(const uint32_t* words, int pos, int bits, uint32_t& lo, uint32_t& hi) {
  if (bits == 8) {
    const uint2 w = *reinterpret_cast<const uint2*>(words + pos / 4);
    lo = w.x;
    hi = w.y;
  } else {
    const int at = pos * bits;  // a multiple of 8·bits <= 32: inside one word
    lo = words[at >> 5] >> (at & 31);
    hi = lo >> (4 * bits);
  }
}

// Positions ch.code .. ch.code + 7 of row r (kind K; ch: the first position's KvChannel) into x.
// CH: int `channel` (each position its own scale and zero, at ch.scale + i and ch.zero + i).
template <kv::LayoutKind K, bool CH>
__device__ __forceinline__ void decode8(const kv::KvLayout& L, const kv::KvChannel& ch, const kv::KvRow& r, float (&x)[8]) {
  using LK = kv::LayoutKind;
  const int p = ch.code;
  if constexpr (K == LK::kPlain) {
    const uint4 a = *reinterpret_cast<const uint4*>(r.words + p), b = *reinterpret_cast<const uint4*>(r.words + p + 4);
    const uint32_t w[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] = __uint_as_float(w[i]);
  } else if constexpr (K == LK::kBf16) {
    const uint4 a = *reinterpret_cast<const uint4*>(r.words + p / 2);
    const uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      x[2 * i] = __uint_as_float(w[i] << 16);
      x[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  } else if constexpr (K == LK::kFp8) {
    const uint2 a = *reinterpret_cast<const uint2*>(r.words + p / 4);
    const uint32_t w[2] = {a.x, a.y};
    const float s = ch.scale < 0 ? L.fp8_scale : r.params[ch.scale];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const auto pair = __nv_fp8x2_storage_t(w[i] >> (16 * h));
        __half2_raw hr;
        if (L.e5m2) {
          hr.x = uint16_t((pair & 0xffu) << 8);
          hr.y = uint16_t(pair & 0xff00u);
        } else {
          hr = __nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3);
        }
        const float2 f = __half22float2(__half2(hr));
        x[4 * i + 2 * h] = f.x;
        x[4 * i + 2 * h + 1] = f.y;
      }
    if (s != 1.0f)  // kv_set_value multiplies unless the scale is 1
#pragma unroll
      for (int i = 0; i < 8; ++i) x[i] = __fmul_rn(x[i], s);
  } else {  // kInt, kGgml: (q ^ flip) - base, times the scale [+ the min]
    const int bits = K == LK::kInt ? L.bits : kv::ggml_code_bits(L.ggml);
    uint32_t lo, hi;
    codes8(r.words, p, bits, lo, hi);
    const uint32_t mask = (1u << bits) - 1u;
    const auto code = [&](int i) { return (i < 4 ? lo : hi) >> ((i % 4) * bits) & mask; };
    if constexpr (K == LK::kInt && CH) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float4 s4 = *reinterpret_cast<const float4*>(r.params + ch.scale + 4 * h);
        float4 z4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (ch.zero >= 0) z4 = *reinterpret_cast<const float4*>(r.params + ch.zero + 4 * h);
        const float sc[4] = {s4.x, s4.y, s4.z, s4.w}, zs[4] = {z4.x, z4.y, z4.z, z4.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float base = kMagic + float(kv::affine_zero_code(L.bits, L.sym, zs[i]));
          x[4 * h + i] = __fmul_rn(__fsub_rn(magic_int(code(4 * h + i)), base), sc[i]);
        }
      }
    } else if constexpr (K == LK::kInt) {
      const kv::KvSet set = kv::kv_set<K>(L, ch, r.params);
      const float base = kMagic + float(set.zc);
#pragma unroll
      for (int i = 0; i < 8; ++i) x[i] = __fmul_rn(__fsub_rn(magic_int(code(i)), base), set.scale);
    } else {  // q8_0: int8(q)·d; q4_0: (q - 8)·d; q4_1: q·d + m
      const kv::KvSet set = kv::kv_set<K>(L, ch, r.params);
      const bool q8 = L.ggml == io::GgmlType::Q8_0;
      const uint32_t flip = q8 ? 0x80u : 0u;
      const float base = kMagic + (q8 ? 128.0f : L.ggml == io::GgmlType::Q4_0 ? 8.0f : 0.0f);
#pragma unroll
      for (int i = 0; i < 8; ++i) x[i] = __fmul_rn(__fsub_rn(magic_int(code(i) ^ flip), base), set.scale);
      if (kv::ggml_has_min(L.ggml))
#pragma unroll
        for (int i = 0; i < 8; ++i) x[i] = __fadd_rn(x[i], set.zero);
    }
  }
}

// Eight fp16 values of the residual ring (at a 16-byte boundary) as floats (exact).
__device__ __forceinline__ void ring8(const uint16_t* h, float (&x)[8]) {
  const uint4 a = *reinterpret_cast<const uint4*>(h);
  const uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
    x[2 * i] = f.x;
    x[2 * i + 1] = f.y;
  }
}
// Four fp16 values at an 8-byte boundary.
__device__ __forceinline__ void ring4(const uint16_t* h, float* x) {
  const uint2 a = *reinterpret_cast<const uint2*>(h);
  const float2 f0 = __half22float2(*reinterpret_cast<const __half2*>(&a.x));
  const float2 f1 = __half22float2(*reinterpret_cast<const __half2*>(&a.y));
  x[0] = f0.x;
  x[1] = f0.y;
  x[2] = f1.x;
  x[3] = f1.y;
}

}  // namespace kvaudit::engine::cuda
