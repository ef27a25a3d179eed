// The AVX2 spans of fp8 (kv/schemes/fp8_simd.cc), each bit-identical to kv/layout.h's scalar
// fp8_encode / fp8_decode; each returns how many leading values it did (n/8·8), the caller does
// the rest with the scalar definition.
#pragma once
#include <cstdint>

#include "kv/layout.h"  // Fp8Format

namespace kvaudit::kv {

// codes[i] = fp8_encode(x[i] / s) (x[i] itself when s == 1).
int64_t fp8_codes_span(const float* x, int64_t n, float s, const Fp8Format& f, uint8_t* codes);
// out[i] = fp8_decode(fp8_encode(x[i] / s)) · s (no · s when s == 1) without the codes (the
// simulated path), hinting x + n (the next row of an append) into the cache.
int64_t fp8_values_span(const float* x, int64_t n, float s, const Fp8Format& f, float* out);
// out[i] = fp8_decode(codes[i]) · s (no · s when s == 1), except that both e4m3 NaN codes give +NaN.
int64_t fp8_decode_span(const uint8_t* codes, int64_t n, float s, const Fp8Format& f, float* out);

}  // namespace kvaudit::kv
