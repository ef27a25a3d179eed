// IEEE fp16 and bfloat16 <-> float, exact and round-to-nearest-even (the rounding torch uses), on
// the host and in CUDA kernels alike (the device KV caches store fp16 residual rows and bf16 values).
#pragma once
#include <cstdint>

#include "core/bits.h"

namespace kvaudit {

KVAUDIT_HD inline float bf16_to_float(uint16_t h) { return bits_float(uint32_t(h) << 16); }

KVAUDIT_HD inline uint16_t float_to_bf16(float f) {
  uint32_t bits = float_bits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

KVAUDIT_HD inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do { mant <<= 1; ++e; } while ((mant & 0x400u) == 0);
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  return bits_float(bits);
}

KVAUDIT_HD inline uint16_t float_to_fp16(float f) {
  uint32_t x = float_bits(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return sign | 0x7e00u;              // NaN
  if (x >= 0x477ff000u) return sign | 0x7c00u;             // rounds to inf (>= 65520)
  if (x < 0x38800000u) {                                   // subnormal or zero in fp16
    if (x < 0x33000000u) return sign;                      // < 2^-25 rounds to 0
    const uint32_t e = x >> 23;
    const uint32_t m = (x & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;                        // 14..24 (value = m * 2^(e-150))
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return uint16_t(sign | q);
  }
  uint32_t r = x + 0xfffu + ((x >> 13) & 1u) - (uint32_t(112) << 23);
  return uint16_t(sign | (r >> 13));
}

// Rounds a float through fp16 / bf16 storage.
KVAUDIT_HD inline float round_fp16(float f) { return fp16_to_float(float_to_fp16(f)); }
KVAUDIT_HD inline float round_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

}  // namespace kvaudit
