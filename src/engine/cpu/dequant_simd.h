// AVX2 decoders of the ggml weight encodings for the matmul (issue 14): each yields 8 consecutive
// weights of a row as the exact floats io::dequantize_row gives them, so a matmul over decoded
// tiles is bit-identical to one over the fp32-expanded matrix.
//
// Affine types (`d * q + m`, `(d * sc) * q - dmin * m`) use one FMA where the reference multiplies
// then adds, and give the same bits: the product is exact in fp32 (an fp16 scale has 11
// significant bits, times a 6-bit sub-scale and a code of at most 5 bits is at most 22 bits < 24),
// so the reference's only rounding is the add's, which is the FMA's one rounding.
//
// A decoder D reads a row in groups of D::kGroup elements (8 for plain types, 32 = one block or
// sub-block for quantized ones): block(row, g) decodes group g's scales once (broadcast), and
// chunk(b, i) is chunk i < kGroup/8 of it: elements [g*kGroup + 8i, +8); load(row, g, i) does
// both. Plain types also decode single elements (scalar) for a row's tail.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "core/half.h"
#include "io/ggml_quants.h"

namespace kvaudit::engine::cpu::dequant {

inline uint16_t u16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
// An fp16 scale as a float: F16C's conversion is exact, like core/half.h's.
inline float f16_at(const uint8_t* p) { return _cvtsh_ss(u16_at(p)); }
// The same, broadcast to 8 lanes.
inline __m256 f16_bcast(const uint8_t* p) { return _mm256_cvtph_ps(_mm_set1_epi16(short(u16_at(p)))); }
inline __m256i u8x8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline __m256 to_ps(__m256i v) { return _mm256_cvtepi32_ps(v); }
// 4-bit codes of elements [8i, 8i + 8) of a legacy block: low nibbles of qs[0..16) then high ones.
inline __m256i nibbles(const uint8_t* qs, int i) {
  const __m256i b = u8x8(qs + 8 * (i & 1));
  return i < 2 ? _mm256_and_si256(b, _mm256_set1_epi32(0x0f)) : _mm256_srli_epi32(b, 4);
}
// 16 where bit j of the 8-bit mask `bits` is set, lane j.
inline __m256i bit_lanes16(uint8_t bits) {
  const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i on = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(bits), sel), sel);
  return _mm256_and_si256(on, _mm256_set1_epi32(16));
}
inline __m256i shift_right(__m256i v, int n) { return _mm256_srl_epi32(v, _mm_cvtsi32_si128(n)); }

// Plain types: a group is one chunk; block() is just the row position.
struct Plain {
  const uint8_t* p;
};

struct F32 {
  static constexpr int kGroup = 8;
  using Block = Plain;
  static Block block(const uint8_t* row, int64_t g) { return {row + 32 * g}; }
  static __m256 chunk(const Block& b, int) { return _mm256_loadu_ps(reinterpret_cast<const float*>(b.p)); }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
  static float scalar(const uint8_t* row, int64_t c) { return reinterpret_cast<const float*>(row)[c]; }
};

struct F16 {
  static constexpr int kGroup = 8;
  using Block = Plain;
  static Block block(const uint8_t* row, int64_t g) { return {row + 16 * g}; }
  static __m256 chunk(const Block& b, int) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.p)));
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
  static float scalar(const uint8_t* row, int64_t c) { return fp16_to_float(u16_at(row + 2 * c)); }
};

struct BF16 {
  static constexpr int kGroup = 8;
  using Block = Plain;
  static Block block(const uint8_t* row, int64_t g) { return {row + 16 * g}; }
  static __m256 chunk(const Block& b, int) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
  static float scalar(const uint8_t* row, int64_t c) { return bf16_to_float(u16_at(row + 2 * c)); }
};

// Quantized types: codes at q, one scale d (and offset m) per chunk pair or group.
struct Scaled {
  const uint8_t* q;
  __m256 d, m;
};

struct Q8_0 {  // x = d * q
  static constexpr int kGroup = 32;
  using Block = Scaled;
  static Block block(const uint8_t* row, int64_t g) {
    const uint8_t* b = row + g * int64_t(sizeof(io::BlockQ8_0));
    return {b + 2, f16_bcast(b), _mm256_setzero_ps()};
  }
  static __m256 chunk(const Block& b, int i) {
    const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.q + 8 * i)));
    return _mm256_mul_ps(to_ps(q), b.d);
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
};

struct Q4_0 {  // x = d * (q - 8)
  static constexpr int kGroup = 32;
  using Block = Scaled;
  static Block block(const uint8_t* row, int64_t g) {
    const uint8_t* b = row + g * int64_t(sizeof(io::BlockQ4_0));
    return {b + 2, f16_bcast(b), _mm256_setzero_ps()};
  }
  static __m256 chunk(const Block& b, int i) {
    return _mm256_mul_ps(to_ps(_mm256_sub_epi32(nibbles(b.q, i), _mm256_set1_epi32(8))), b.d);
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
};

struct Q4_1 {  // x = d * q + m
  static constexpr int kGroup = 32;
  using Block = Scaled;
  static Block block(const uint8_t* row, int64_t g) {
    const uint8_t* b = row + g * int64_t(sizeof(io::BlockQ4_1));
    return {b + 4, f16_bcast(b), f16_bcast(b + 2)};
  }
  static __m256 chunk(const Block& b, int i) { return _mm256_fmadd_ps(to_ps(nibbles(b.q, i)), b.d, b.m); }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
};

struct Q5Block {
  const uint8_t* q;
  const uint8_t* qh;
  __m256 d, m;
};

struct Q5_0 {  // x = d * (q - 16), q = nibble | fifth bit << 4
  static constexpr int kGroup = 32;
  using Block = Q5Block;
  static Block block(const uint8_t* row, int64_t g) {
    const uint8_t* b = row + g * int64_t(sizeof(io::BlockQ5_0));
    return {b + 6, b + 2, f16_bcast(b), _mm256_setzero_ps()};
  }
  static __m256 chunk(const Block& b, int i) {
    const __m256i q = _mm256_or_si256(nibbles(b.q, i), bit_lanes16(b.qh[i]));
    return _mm256_mul_ps(to_ps(_mm256_sub_epi32(q, _mm256_set1_epi32(16))), b.d);
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
};

struct Q5_1 {  // x = d * q + m
  static constexpr int kGroup = 32;
  using Block = Q5Block;
  static Block block(const uint8_t* row, int64_t g) {
    const uint8_t* b = row + g * int64_t(sizeof(io::BlockQ5_1));
    return {b + 8, b + 4, f16_bcast(b), f16_bcast(b + 2)};
  }
  static __m256 chunk(const Block& b, int i) {
    const __m256i q = _mm256_or_si256(nibbles(b.q, i), bit_lanes16(b.qh[i]));
    return _mm256_fmadd_ps(to_ps(q), b.d, b.m);
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
};

// K-quants: group g is sub-block s = g % 8 (32 elements) of super-block g / 8; within each half
// of 128 elements, element group k = s % 4 sits in bit pair / nibble k of the same 32 bytes.
// Scales per 16 elements (Q2_K, Q3_K, Q6_K) give chunks 0-1 and 2-3 their own (d, m).
struct KBlock {
  const uint8_t* q;   // this group's code bytes (32)
  const uint8_t* q2;  // second code plane (Q3_K hmask, Q5_K qh, Q6_K qh), 32 bytes
  int shift, shift2;  // bit position of this group in q and q2
  __m256 d[2], m[2];  // per half of the group (chunks 0-1, 2-3)
};

struct Q2_K {  // x = (d * sc) * q - dmin * m, (sc, m) per 16 elements
  static constexpr int kGroup = 32;
  using Block = KBlock;
  static Block block(const uint8_t* row, int64_t g) {
    const uint8_t* b = row + (g / 8) * int64_t(sizeof(io::BlockQ2_K));
    const int s = int(g % 8), half = s / 4, k = s % 4;
    const float d = f16_at(b + 80), dmin = f16_at(b + 82);
    Block blk{b + 16 + 32 * half, nullptr, 2 * k, 0, {_mm256_setzero_ps(), _mm256_setzero_ps()}, {_mm256_setzero_ps(), _mm256_setzero_ps()}};
    for (int h = 0; h < 2; ++h) {
      const uint8_t sc = b[2 * s + h];
      blk.d[h] = _mm256_set1_ps(d * float(sc & 0x0f));
      blk.m[h] = _mm256_set1_ps(dmin * float(sc >> 4));
    }
    return blk;
  }
  static __m256 chunk(const Block& b, int i) {
    const __m256i q = _mm256_and_si256(shift_right(u8x8(b.q + 8 * i), b.shift), _mm256_set1_epi32(3));
    return _mm256_fmsub_ps(b.d[i / 2], to_ps(q), b.m[i / 2]);
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
};

struct Q3_K {  // x = (d * scale) * q, q = low 2 bits - (hmask bit ? 0 : 4)
  static constexpr int kGroup = 32;
  using Block = KBlock;
  static Block block(const uint8_t* row, int64_t g) {
    const uint8_t* b = row + (g / 8) * int64_t(sizeof(io::BlockQ3_K));
    const int s = int(g % 8), half = s / 4, k = s % 4;
    const float d = f16_at(b + 108);
    Block blk{b + 32 + 32 * half, b, 2 * k, 4 * half + k, {_mm256_setzero_ps(), _mm256_setzero_ps()}, {_mm256_setzero_ps(), _mm256_setzero_ps()}};
    for (int h = 0; h < 2; ++h) blk.d[h] = _mm256_set1_ps(d * float(io::q3_k_scale(b + 96, 2 * s + h)));
    return blk;
  }
  static __m256 chunk(const Block& b, int i) {
    const __m256i low = _mm256_and_si256(shift_right(u8x8(b.q + 8 * i), b.shift), _mm256_set1_epi32(3));
    const __m256i hbit = _mm256_and_si256(shift_right(u8x8(b.q2 + 8 * i), b.shift2), _mm256_set1_epi32(1));
    const __m256i q = _mm256_sub_epi32(low, _mm256_sub_epi32(_mm256_set1_epi32(4), _mm256_slli_epi32(hbit, 2)));
    return _mm256_mul_ps(b.d[i / 2], to_ps(q));
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
};

struct Q4_K {  // x = (d * sc) * q - dmin * m, (sc, m) per 32 elements
  static constexpr int kGroup = 32;
  using Block = KBlock;
  static Block block(const uint8_t* row, int64_t g) {
    const uint8_t* b = row + (g / 8) * int64_t(sizeof(io::BlockQ4_K));
    const int s = int(g % 8);
    int sc, m;
    io::k_scale_min(b + 4, s, sc, m);
    const __m256 ds = _mm256_set1_ps(f16_at(b) * float(sc)), ms = _mm256_set1_ps(f16_at(b + 2) * float(m));
    return {b + 16 + 32 * (s / 2), nullptr, 4 * (s % 2), 0, {ds, ds}, {ms, ms}};
  }
  static __m256 chunk(const Block& b, int i) {
    const __m256i q = _mm256_and_si256(shift_right(u8x8(b.q + 8 * i), b.shift), _mm256_set1_epi32(0x0f));
    return _mm256_fmsub_ps(b.d[0], to_ps(q), b.m[0]);
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
};

struct Q5_K {  // as Q4_K with a fifth bit: bit s of qh[l]
  static constexpr int kGroup = 32;
  using Block = KBlock;
  static Block block(const uint8_t* row, int64_t g) {
    const uint8_t* b = row + (g / 8) * int64_t(sizeof(io::BlockQ5_K));
    const int s = int(g % 8);
    int sc, m;
    io::k_scale_min(b + 4, s, sc, m);
    const __m256 ds = _mm256_set1_ps(f16_at(b) * float(sc)), ms = _mm256_set1_ps(f16_at(b + 2) * float(m));
    return {b + 48 + 32 * (s / 2), b + 16, 4 * (s % 2), s, {ds, ds}, {ms, ms}};
  }
  static __m256 chunk(const Block& b, int i) {
    const __m256i low = _mm256_and_si256(shift_right(u8x8(b.q + 8 * i), b.shift), _mm256_set1_epi32(0x0f));
    const __m256i high = _mm256_and_si256(shift_right(u8x8(b.q2 + 8 * i), b.shift2), _mm256_set1_epi32(1));
    const __m256i q = _mm256_or_si256(low, _mm256_slli_epi32(high, 4));
    return _mm256_fmsub_ps(b.d[0], to_ps(q), b.m[0]);
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
};

struct Q6_K {  // x = (d * scale) * (q - 32), q = 4 low bits | 2 high bits << 4, scale per 16
  static constexpr int kGroup = 32;
  using Block = KBlock;
  static Block block(const uint8_t* row, int64_t g) {
    const uint8_t* b = row + (g / 8) * int64_t(sizeof(io::BlockQ6_K));
    const int s = int(g % 8), half = s / 4, k = s % 4;
    const float d = f16_at(b + 208);
    Block blk{b + 64 * half + 32 * (k % 2), b + 128 + 32 * half, 4 * (k / 2), 2 * k, {_mm256_setzero_ps(), _mm256_setzero_ps()}, {_mm256_setzero_ps(), _mm256_setzero_ps()}};
    for (int h = 0; h < 2; ++h) blk.d[h] = _mm256_set1_ps(d * float(int8_t(b[192 + 2 * s + h])));
    return blk;
  }
  static __m256 chunk(const Block& b, int i) {
    const __m256i low = _mm256_and_si256(shift_right(u8x8(b.q + 8 * i), b.shift), _mm256_set1_epi32(0x0f));
    const __m256i high = _mm256_and_si256(shift_right(u8x8(b.q2 + 8 * i), b.shift2), _mm256_set1_epi32(3));
    const __m256i q = _mm256_sub_epi32(_mm256_or_si256(low, _mm256_slli_epi32(high, 4)), _mm256_set1_epi32(32));
    return _mm256_mul_ps(b.d[i / 2], to_ps(q));
  }
  static __m256 load(const uint8_t* row, int64_t g, int i) { return chunk(block(row, g), i); }
};

}  // namespace kvaudit::engine::cpu::dequant
