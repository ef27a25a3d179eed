#include "io/ggml_quants.h"

#include <array>
#include <cstring>

#include "core/error.h"
#include "core/half.h"

namespace kvaudit::io {

namespace {

// Sizes are ggml's (facts of the format); tests cross-check them against gguf-py's table.
constexpr std::array<GgmlTypeTraits, 34> kTraits = {{
    {GgmlType::F32, "F32", 1, 4, true},
    {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", kQK, sizeof(BlockQ4_0), true},
    {GgmlType::Q4_1, "Q4_1", kQK, sizeof(BlockQ4_1), true},
    {GgmlType::Q5_0, "Q5_0", kQK, sizeof(BlockQ5_0), true},
    {GgmlType::Q5_1, "Q5_1", kQK, sizeof(BlockQ5_1), true},
    {GgmlType::Q8_0, "Q8_0", kQK, sizeof(BlockQ8_0), true},
    {GgmlType::Q8_1, "Q8_1", kQK, 40, false},
    {GgmlType::Q2_K, "Q2_K", kQK_K, sizeof(BlockQ2_K), true},
    {GgmlType::Q3_K, "Q3_K", kQK_K, sizeof(BlockQ3_K), true},
    {GgmlType::Q4_K, "Q4_K", kQK_K, sizeof(BlockQ4_K), true},
    {GgmlType::Q5_K, "Q5_K", kQK_K, sizeof(BlockQ5_K), true},
    {GgmlType::Q6_K, "Q6_K", kQK_K, sizeof(BlockQ6_K), true},
    {GgmlType::Q8_K, "Q8_K", kQK_K, 292, false},
    {GgmlType::IQ2_XXS, "IQ2_XXS", kQK_K, 66, false},
    {GgmlType::IQ2_XS, "IQ2_XS", kQK_K, 74, false},
    {GgmlType::IQ3_XXS, "IQ3_XXS", kQK_K, 98, false},
    {GgmlType::IQ1_S, "IQ1_S", kQK_K, 50, false},
    {GgmlType::IQ4_NL, "IQ4_NL", kQK, 18, false},
    {GgmlType::IQ3_S, "IQ3_S", kQK_K, 110, false},
    {GgmlType::IQ2_S, "IQ2_S", kQK_K, 82, false},
    {GgmlType::IQ4_XS, "IQ4_XS", kQK_K, 136, false},
    {GgmlType::I8, "I8", 1, 1, false},
    {GgmlType::I16, "I16", 1, 2, false},
    {GgmlType::I32, "I32", 1, 4, false},
    {GgmlType::I64, "I64", 1, 8, false},
    {GgmlType::F64, "F64", 1, 8, false},
    {GgmlType::IQ1_M, "IQ1_M", kQK_K, 56, false},
    {GgmlType::BF16, "BF16", 1, 2, true},
    {GgmlType::TQ1_0, "TQ1_0", kQK_K, 54, false},
    {GgmlType::TQ2_0, "TQ2_0", kQK_K, 66, false},
    {GgmlType::MXFP4, "MXFP4", 32, 17, false},
    {GgmlType::NVFP4, "NVFP4", 64, 36, false},
    {GgmlType::Q1_0, "Q1_0", 128, 18, false},
}};

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Blocks are copied out of the (possibly unaligned) source before use.
template <typename Block>
Block load_block(const uint8_t* src, int64_t b) {
  Block blk;
  std::memcpy(&blk, src + b * int64_t(sizeof(Block)), sizeof(Block));
  return blk;
}

// --- legacy 32-element blocks: element j < 16 sits in the low nibble of qs[j], element j + 16 in
// the high nibble; Q5 types add a fifth bit from the 32-bit qh mask (bit j for element j).

void dequant_q8_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<BlockQ8_0>(src, b);
    const float d = fp16_to_float(blk.d);
    for (int j = 0; j < kQK; ++j) y[b * kQK + j] = float(blk.qs[j]) * d;  // x = d * q
  }
}

int nibble(const uint8_t* qs, int j) {  // 4-bit code of element j of a 32-element block
  return j < kQK / 2 ? (qs[j] & 0x0f) : (qs[j - kQK / 2] >> 4);
}

int fifth_bit(const uint8_t qh[4], int j) {  // bit j of the little-endian 32-bit mask
  return (qh[j / 8] >> (j % 8)) & 1;
}

void dequant_q4_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<BlockQ4_0>(src, b);
    const float d = fp16_to_float(blk.d);
    for (int j = 0; j < kQK; ++j) y[b * kQK + j] = float(nibble(blk.qs, j) - 8) * d;  // x = d * (q - 8)
  }
}

void dequant_q4_1(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<BlockQ4_1>(src, b);
    const float d = fp16_to_float(blk.d), m = fp16_to_float(blk.m);
    for (int j = 0; j < kQK; ++j) y[b * kQK + j] = float(nibble(blk.qs, j)) * d + m;  // x = d * q + m
  }
}

void dequant_q5_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<BlockQ5_0>(src, b);
    const float d = fp16_to_float(blk.d);
    for (int j = 0; j < kQK; ++j) {
      const int q = nibble(blk.qs, j) | fifth_bit(blk.qh, j) << 4;
      y[b * kQK + j] = float(q - 16) * d;  // x = d * (q - 16)
    }
  }
}

void dequant_q5_1(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<BlockQ5_1>(src, b);
    const float d = fp16_to_float(blk.d), m = fp16_to_float(blk.m);
    for (int j = 0; j < kQK; ++j) {
      const int q = nibble(blk.qs, j) | fifth_bit(blk.qh, j) << 4;
      y[b * kQK + j] = float(q) * d + m;  // x = d * q + m
    }
  }
}

// --- K-quants: 256-element super-blocks with 16 or 8 sub-block scales. Within each half of
// 128 elements, the 2-bit planes (Q2_K, Q3_K) are laid out as 32 bytes whose bit pair 2k holds
// elements [32k, 32k + 32) of that half.

void dequant_q2_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<BlockQ2_K>(src, b);
    const float d = fp16_to_float(blk.d), dmin = fp16_to_float(blk.dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, k = (e % 128) / 32, l = e % 32;
      const int q = (blk.qs[32 * half + l] >> (2 * k)) & 3;
      const uint8_t sc = blk.scales[e / 16];  // low nibble: scale, high nibble: min
      y[b * kQK_K + e] = d * float(sc & 0x0f) * float(q) - dmin * float(sc >> 4);
    }
  }
}

void dequant_q3_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<BlockQ3_K>(src, b);
    const float d = fp16_to_float(blk.d);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, k = (e % 128) / 32, l = e % 32;
      const int low = (blk.qs[32 * half + l] >> (2 * k)) & 3;
      // A set hmask bit means "no -4": q = low - 4 * (1 - hbit), range [-4, 3].
      const int hbit = (blk.hmask[l] >> (4 * half + k)) & 1;
      const int q = low - (hbit ? 0 : 4);
      y[b * kQK_K + e] = d * float(q3_k_scale(blk.scales, e / 16)) * float(q);
    }
  }
}

void dequant_q4_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<BlockQ4_K>(src, b);
    const float d = fp16_to_float(blk.d), dmin = fp16_to_float(blk.dmin);
    for (int sub = 0; sub < 8; ++sub) {  // 32 elements each; pairs of subs share 32 bytes
      int sc, m;
      k_scale_min(blk.scales, sub, sc, m);
      const float ds = d * float(sc), ms = dmin * float(m);
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = blk.qs[32 * (sub / 2) + l];
        const int q = sub % 2 == 0 ? (byte & 0x0f) : (byte >> 4);
        y[b * kQK_K + 32 * sub + l] = ds * float(q) - ms;
      }
    }
  }
}

void dequant_q5_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<BlockQ5_K>(src, b);
    const float d = fp16_to_float(blk.d), dmin = fp16_to_float(blk.dmin);
    for (int sub = 0; sub < 8; ++sub) {
      int sc, m;
      k_scale_min(blk.scales, sub, sc, m);
      const float ds = d * float(sc), ms = dmin * float(m);
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = blk.qs[32 * (sub / 2) + l];
        const int low = sub % 2 == 0 ? (byte & 0x0f) : (byte >> 4);
        const int q = low | ((blk.qh[l] >> sub) & 1) << 4;  // bit sub of qh[l] is the fifth bit
        y[b * kQK_K + 32 * sub + l] = ds * float(q) - ms;
      }
    }
  }
}

// Q6_K: per half of 128 elements, 64 bytes of low nibbles (element groups k = 0..3 of 32: bytes
// [32 * (k % 2), +32), nibble k / 2) and 32 bytes of high bit pairs (pair k of byte l); 16 int8
// scales, one per 16 elements.
void dequant_q6_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<BlockQ6_K>(src, b);
    const float d = fp16_to_float(blk.d);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, k = (e % 128) / 32, l = e % 32;
      const int low = (blk.ql[64 * half + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0f;
      const int high = (blk.qh[32 * half + l] >> (2 * k)) & 3;
      const int q = (low | high << 4) - 32;
      y[b * kQK_K + e] = d * float(blk.scales[e / 16]) * float(q);
    }
  }
}

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t id) {
  for (const auto& t : kTraits)
    if (uint32_t(t.type) == id) return t;
  return std::nullopt;
}

const GgmlTypeTraits& ggml_traits(GgmlType t) {
  for (const auto& tr : kTraits)
    if (tr.type == t) return tr;
  usage_error("unknown ggml type id {}", uint32_t(t));
}

const char* ggml_type_name(GgmlType t) { return ggml_traits(t).name; }

size_t ggml_row_bytes(GgmlType t, int64_t n) {
  const auto& tr = ggml_traits(t);
  if (n < 0 || n % tr.block_size != 0)
    usage_error("ggml type {}: row of {} elements is not a multiple of the block size {}", tr.name, n,
                tr.block_size);
  return size_t(n / tr.block_size) * tr.type_size;
}

void dequantize_row(GgmlType t, const void* src_v, float* y, int64_t n) {
  const auto& tr = ggml_traits(t);
  if (!tr.dequantizable) usage_error("ggml type {} is not supported (cannot dequantize it)", tr.name);
  ggml_row_bytes(t, n);  // checks n against the block size
  const auto* src = static_cast<const uint8_t*>(src_v);
  const int64_t nb = n / tr.block_size;
  switch (t) {
    case GgmlType::F32:
      std::memcpy(y, src, size_t(n) * 4);
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_float(load_u16(src + 2 * i));
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_float(load_u16(src + 2 * i));
      return;
    case GgmlType::Q8_0: return dequant_q8_0(src, y, nb);
    case GgmlType::Q4_0: return dequant_q4_0(src, y, nb);
    case GgmlType::Q4_1: return dequant_q4_1(src, y, nb);
    case GgmlType::Q5_0: return dequant_q5_0(src, y, nb);
    case GgmlType::Q5_1: return dequant_q5_1(src, y, nb);
    case GgmlType::Q2_K: return dequant_q2_k(src, y, nb);
    case GgmlType::Q3_K: return dequant_q3_k(src, y, nb);
    case GgmlType::Q4_K: return dequant_q4_k(src, y, nb);
    case GgmlType::Q5_K: return dequant_q5_k(src, y, nb);
    case GgmlType::Q6_K: return dequant_q6_k(src, y, nb);
    default: usage_error("ggml type {} is not supported (cannot dequantize it)", tr.name);
  }
}

namespace {
// Element j's 4-bit code into qs (the layout nibble() reads); the fifth bit into qh (fifth_bit()).
void put_nibbles(const uint8_t codes[kQK], uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = uint8_t((codes[j] & 15) | (codes[j + kQK / 2] & 15) << 4);
}
void put_fifth_bits(const uint8_t codes[kQK], uint8_t qh[4]) {
  uint32_t mask = 0;
  for (int j = 0; j < kQK; ++j) mask |= uint32_t((codes[j] >> 4) & 1u) << j;
  for (int i = 0; i < 4; ++i) qh[i] = uint8_t(mask >> (8 * i));
}
template <typename Block>
size_t store_block(const Block& blk, uint8_t* out) {
  std::memcpy(out, &blk, sizeof(Block));
  return sizeof(Block);
}
}  // namespace

size_t encode_legacy_block(GgmlType t, const uint8_t codes[kQK], uint16_t d, uint16_t m, uint8_t* out) {
  switch (t) {
    case GgmlType::Q8_0: {
      BlockQ8_0 b{d, {}};
      std::memcpy(b.qs, codes, kQK);
      return store_block(b, out);
    }
    case GgmlType::Q4_0: {
      BlockQ4_0 b{d, {}};
      put_nibbles(codes, b.qs);
      return store_block(b, out);
    }
    case GgmlType::IQ4_NL: {
      BlockIQ4_NL b{d, {}};
      put_nibbles(codes, b.qs);
      return store_block(b, out);
    }
    case GgmlType::Q4_1: {
      BlockQ4_1 b{d, m, {}};
      put_nibbles(codes, b.qs);
      return store_block(b, out);
    }
    case GgmlType::Q5_0: {
      BlockQ5_0 b{d, {}, {}};
      put_fifth_bits(codes, b.qh);
      put_nibbles(codes, b.qs);
      return store_block(b, out);
    }
    case GgmlType::Q5_1: {
      BlockQ5_1 b{d, m, {}, {}};
      put_fifth_bits(codes, b.qh);
      put_nibbles(codes, b.qs);
      return store_block(b, out);
    }
    default: usage_error("encode_legacy_block: {} is not a 32-element legacy block type", ggml_type_name(t));
  }
}

}  // namespace kvaudit::io
