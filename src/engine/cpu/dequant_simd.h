// AVX2 decoders of the ggml weight encodings for the matmul (issue 14): each yields 8 consecutive
// weights of a row as the exact floats io::dequantize_row gives them (same formula, same rounding
// steps: a reference `d * float(q) + m` is a multiply then an add here too, never an FMA), so a
// matmul over decoded tiles is bit-identical to one over the fp32-expanded matrix.
//
// A decoder D reads a row in groups of D::kGroup elements (8 for plain types, 32 = one block or
// sub-block for quantized ones); load(row, g, i) is chunk i < kGroup/8 of group g: elements
// [g*kGroup + 8i, +8). Plain types also decode single elements (scalar) for a row's tail.
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

struct F32 {
  static constexpr int kGroup = 8;
  static __m256 load(const uint8_t* row, int64_t g, int) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + 8 * g);
  }
  static float scalar(const uint8_t* row, int64_t c) { return reinterpret_cast<const float*>(row)[c]; }
};

struct F16 {
  static constexpr int kGroup = 8;
  static __m256 load(const uint8_t* row, int64_t g, int) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * g)));
  }
  static float scalar(const uint8_t* row, int64_t c) { return fp16_to_float(u16_at(row + 2 * c)); }
};

struct BF16 {
  static constexpr int kGroup = 8;
  static __m256 load(const uint8_t* row, int64_t g, int) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * g)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
  static float scalar(const uint8_t* row, int64_t c) { return bf16_to_float(u16_at(row + 2 * c)); }
};

struct Q8_0 {  // x = d * q
  static constexpr int kGroup = 32;
  static __m256 load(const uint8_t* row, int64_t g, int i) {
    const uint8_t* b = row + g * int64_t(sizeof(io::BlockQ8_0));
    const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + 8 * i)));
    return _mm256_mul_ps(to_ps(q), _mm256_set1_ps(f16_at(b)));
  }
};

struct Q4_0 {  // x = d * (q - 8)
  static constexpr int kGroup = 32;
  static __m256 load(const uint8_t* row, int64_t g, int i) {
    const uint8_t* b = row + g * int64_t(sizeof(io::BlockQ4_0));
    const __m256i q = _mm256_sub_epi32(nibbles(b + 2, i), _mm256_set1_epi32(8));
    return _mm256_mul_ps(to_ps(q), _mm256_set1_ps(f16_at(b)));
  }
};

struct Q4_1 {  // x = d * q + m
  static constexpr int kGroup = 32;
  static __m256 load(const uint8_t* row, int64_t g, int i) {
    const uint8_t* b = row + g * int64_t(sizeof(io::BlockQ4_1));
    const __m256 dq = _mm256_mul_ps(to_ps(nibbles(b + 4, i)), _mm256_set1_ps(f16_at(b)));
    return _mm256_add_ps(dq, _mm256_set1_ps(f16_at(b + 2)));
  }
};

struct Q5_0 {  // x = d * (q - 16), q = nibble | fifth bit << 4
  static constexpr int kGroup = 32;
  static __m256 load(const uint8_t* row, int64_t g, int i) {
    const uint8_t* b = row + g * int64_t(sizeof(io::BlockQ5_0));
    const __m256i q = _mm256_or_si256(nibbles(b + 6, i), bit_lanes16(b[2 + i]));
    return _mm256_mul_ps(to_ps(_mm256_sub_epi32(q, _mm256_set1_epi32(16))), _mm256_set1_ps(f16_at(b)));
  }
};

struct Q5_1 {  // x = d * q + m
  static constexpr int kGroup = 32;
  static __m256 load(const uint8_t* row, int64_t g, int i) {
    const uint8_t* b = row + g * int64_t(sizeof(io::BlockQ5_1));
    const __m256i q = _mm256_or_si256(nibbles(b + 8, i), bit_lanes16(b[4 + i]));
    const __m256 dq = _mm256_mul_ps(to_ps(q), _mm256_set1_ps(f16_at(b)));
    return _mm256_add_ps(dq, _mm256_set1_ps(f16_at(b + 2)));
  }
};

// K-quants: group g is sub-block s = g % 8 (32 elements) of super-block g / 8; within each half
// of 128 elements, element group k = s % 4 sits in bit pair / nibble k of the same 32 bytes.

struct Q2_K {  // x = (d * sc) * q - dmin * m, (sc, m) per 16 elements
  static constexpr int kGroup = 32;
  static __m256 load(const uint8_t* row, int64_t g, int i) {
    const uint8_t* b = row + (g / 8) * int64_t(sizeof(io::BlockQ2_K));
    const int s = int(g % 8), half = s / 4, k = s % 4;
    const __m256i q = _mm256_and_si256(shift_right(u8x8(b + 16 + 32 * half + 8 * i), 2 * k), _mm256_set1_epi32(3));
    const uint8_t sc = b[2 * s + i / 2];
    const float dl = f16_at(b + 80) * float(sc & 0x0f), ml = f16_at(b + 82) * float(sc >> 4);
    return _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(dl), to_ps(q)), _mm256_set1_ps(ml));
  }
};

struct Q3_K {  // x = (d * scale) * q, q = low 2 bits - (hmask bit ? 0 : 4)
  static constexpr int kGroup = 32;
  static __m256 load(const uint8_t* row, int64_t g, int i) {
    const uint8_t* b = row + (g / 8) * int64_t(sizeof(io::BlockQ3_K));
    const int s = int(g % 8), half = s / 4, k = s % 4;
    const __m256i low = _mm256_and_si256(shift_right(u8x8(b + 32 + 32 * half + 8 * i), 2 * k), _mm256_set1_epi32(3));
    const __m256i hbit = _mm256_and_si256(shift_right(u8x8(b + 8 * i), 4 * half + k), _mm256_set1_epi32(1));
    const __m256i q = _mm256_sub_epi32(low, _mm256_sub_epi32(_mm256_set1_epi32(4), _mm256_slli_epi32(hbit, 2)));
    const float dl = f16_at(b + 108) * float(io::q3_k_scale(b + 96, 2 * s + i / 2));
    return _mm256_mul_ps(_mm256_set1_ps(dl), to_ps(q));
  }
};

struct Q4_K {  // x = (d * sc) * q - dmin * m, (sc, m) per 32 elements
  static constexpr int kGroup = 32;
  static __m256 load(const uint8_t* row, int64_t g, int i) {
    const uint8_t* b = row + (g / 8) * int64_t(sizeof(io::BlockQ4_K));
    const int s = int(g % 8);
    const __m256i bytes = u8x8(b + 16 + 32 * (s / 2) + 8 * i);
    const __m256i q = s % 2 == 0 ? _mm256_and_si256(bytes, _mm256_set1_epi32(0x0f)) : _mm256_srli_epi32(bytes, 4);
    int sc, m;
    io::k_scale_min(b + 4, s, sc, m);
    const float ds = f16_at(b) * float(sc), ms = f16_at(b + 2) * float(m);
    return _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(ds), to_ps(q)), _mm256_set1_ps(ms));
  }
};

struct Q5_K {  // as Q4_K with a fifth bit: bit s of qh[l]
  static constexpr int kGroup = 32;
  static __m256 load(const uint8_t* row, int64_t g, int i) {
    const uint8_t* b = row + (g / 8) * int64_t(sizeof(io::BlockQ5_K));
    const int s = int(g % 8);
    const __m256i bytes = u8x8(b + 48 + 32 * (s / 2) + 8 * i);
    const __m256i low = s % 2 == 0 ? _mm256_and_si256(bytes, _mm256_set1_epi32(0x0f)) : _mm256_srli_epi32(bytes, 4);
    const __m256i high = _mm256_and_si256(shift_right(u8x8(b + 16 + 8 * i), s), _mm256_set1_epi32(1));
    const __m256i q = _mm256_or_si256(low, _mm256_slli_epi32(high, 4));
    int sc, m;
    io::k_scale_min(b + 4, s, sc, m);
    const float ds = f16_at(b) * float(sc), ms = f16_at(b + 2) * float(m);
    return _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(ds), to_ps(q)), _mm256_set1_ps(ms));
  }
};

struct Q6_K {  // x = (d * scale) * (q - 32), q = 4 low bits | 2 high bits << 4, scale per 16
  static constexpr int kGroup = 32;
  static __m256 load(const uint8_t* row, int64_t g, int i) {
    const uint8_t* b = row + (g / 8) * int64_t(sizeof(io::BlockQ6_K));
    const int s = int(g % 8), half = s / 4, k = s % 4;
    const __m256i lb = u8x8(b + 64 * half + 32 * (k % 2) + 8 * i);
    const __m256i low = k < 2 ? _mm256_and_si256(lb, _mm256_set1_epi32(0x0f)) : _mm256_srli_epi32(lb, 4);
    const __m256i high = _mm256_and_si256(shift_right(u8x8(b + 128 + 32 * half + 8 * i), 2 * k), _mm256_set1_epi32(3));
    const __m256i q = _mm256_sub_epi32(_mm256_or_si256(low, _mm256_slli_epi32(high, 4)), _mm256_set1_epi32(32));
    const float dl = f16_at(b + 208) * float(int8_t(b[192 + 2 * s + i / 2]));
    return _mm256_mul_ps(_mm256_set1_ps(dl), to_ps(q));
  }
};

}  // namespace kvaudit::engine::cpu::dequant
