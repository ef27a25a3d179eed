// ggml tensor types: numeric ids as GGUF stores them, block layouts, sizes and scalar
// reference dequantization (SPEC.md §1: GGUF types dequantized at load).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvaudit::io {

// Ids as ggml numbers them in GGUF tensor infos (gaps are types ggml removed).
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
};

struct GgmlTypeTraits {
  GgmlType type;
  const char* name;     // "Q4_K", as ggml and TensorInfo::dtype spell it
  int64_t block_size;   // elements per block (1 for plain types)
  size_t type_size;     // bytes per block
  bool dequantizable;   // dequantize_row supports it
};

// Traits of a known id, or nullopt for an id ggml does not define.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t id);
// Traits of a type (always known).
const GgmlTypeTraits& ggml_traits(GgmlType t);
const char* ggml_type_name(GgmlType t);

// Bytes of a row of n elements; throws UsageError when n is not a multiple of the block size.
size_t ggml_row_bytes(GgmlType t, int64_t n);

// Scalar reference: dst[0..n) = the values of the n elements encoded at src (n a multiple of the
// block size). Throws UsageError naming the type when it is unsupported or n does not fit.
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);

// --- block layouts (little-endian, packed; sizes are part of the format) ---
constexpr int kQK = 32;    // elements per block of the legacy quants
constexpr int kQK_K = 256; // elements per super-block of the K-quants
constexpr int kKScaleBytes = 12;

struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[kQK / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };
struct BlockIQ4_NL { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ2_K { uint8_t scales[kQK_K / 16]; uint8_t qs[kQK_K / 4]; uint16_t d; uint16_t dmin; };
struct BlockQ3_K { uint8_t hmask[kQK_K / 8]; uint8_t qs[kQK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[kKScaleBytes]; uint8_t qs[kQK_K / 2]; };
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[kKScaleBytes]; uint8_t qh[kQK_K / 8]; uint8_t qs[kQK_K / 2]; };
struct BlockQ6_K { uint8_t ql[kQK_K / 2]; uint8_t qh[kQK_K / 4]; int8_t scales[kQK_K / 16]; uint16_t d; };

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// The inverse of the legacy types' decoding: one block of 32 codes (q8_0: int8 two's complement;
// q5: 5-bit; others 4-bit) with fp16 d (and m for q4_1/q5_1) written in t's byte layout at out.
// Returns the bytes written (sizeof the block). t: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or IQ4_NL.
size_t encode_legacy_block(GgmlType t, const uint8_t codes[kQK], uint16_t d, uint16_t m, uint8_t* out);

// --- K-quant sub-block scales (shared by the reference dequantizer and the engine's SIMD one) ---

// Q3_K: 16 six-bit scales stored biased by 32: low 4 bits in nibbles of bytes 0..7 (scale i < 8
// in the low nibble of byte i, scale i >= 8 in the high nibble of byte i - 8), high 2 bits in
// bytes 8..11 (bit pair i / 4 of byte 8 + i % 4).
inline int q3_k_scale(const uint8_t s[12], int i) {
  const int low = i < 8 ? (s[i] & 0x0f) : (s[i - 8] >> 4);
  const int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (low | high << 4) - 32;
}

// Q4_K / Q5_K: 8 six-bit (scale, min) pairs packed in 12 bytes. Pairs 0..3: low 6 bits of bytes
// 0..3 (scale) and 4..7 (min); pairs 4..7: a nibble of byte j + 4 plus the top 2 bits of bytes
// j - 4 (scale) and j (min).
inline void k_scale_min(const uint8_t s[kKScaleBytes], int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0f) | (s[j - 4] >> 6) << 4;
    m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

}  // namespace kvaudit::io
