// fp8 e4m3 (OCP/NVIDIA "fn": bias 7, no infinities, max 448, NaN = S.1111.111) and e5m2 (bias 15,
// IEEE-like, max finite 57344) as vLLM's fp8 KV cache uses them (SPEC.md §3):
// x' = decode(encode_RNE_satfinite(x / scale)) · scale.
#pragma once
#include <cstdint>
#include <memory>

#include "kv/row_quantizer.h"

namespace kvaudit::kv {

struct Fp8Format {
  int exp_bits, man_bits, bias;
  uint8_t max_code;   // largest finite magnitude code
  uint8_t nan_code;   // magnitude code written for NaN
  float max_value;    // 448 or 57344
  bool has_inf;       // e5m2: exponent all ones, mantissa 0 = inf
};
inline constexpr Fp8Format kE4M3{4, 3, 7, 0x7e, 0x7f, 448.0f, false};
inline constexpr Fp8Format kE5M2{5, 2, 15, 0x7b, 0x7f, 57344.0f, true};

// Reference encoder written as the definition reads: NaN -> NaN; |x| >= max -> max (satfinite, inf
// included); subnormal range -> round(|x| / 2^(1-bias-M)); else exponent e = floor(log2|x|),
// mantissa round((|x|/2^e - 1)·2^M) with a carry into the exponent; round = nearest, ties to even.
uint8_t fp8_encode_ref(float x, const Fp8Format& f);
// Bit-manipulation encoder used by the cache; equal to fp8_encode_ref for every float (tested).
uint8_t fp8_encode(float x, const Fp8Format& f);
// fp8_encode over x [n] -> codes [n], vectorised (AVX2); equal to fp8_encode (tested).
void fp8_encode_span(const float* x, int64_t n, const Fp8Format& f, uint8_t* codes);
// Decode from the bit layout: E = 0: M·2^(1-bias-M); else (1 + M/2^M)·2^(E-bias); e4m3 S.1111.111 and
// e5m2 E = 31 with M != 0 are NaN; e5m2 E = 31, M = 0 is ±inf.
float fp8_decode(uint8_t code, const Fp8Format& f);

// fixed_scale > 0: every row uses it (1.0 = vLLM default, or the calibrated per-layer scale);
// fixed_scale == 0: dynamic, per row scale = max|x| / max_value stored as an fp32 parameter.
std::unique_ptr<RowQuantizer> make_fp8_quantizer(const Fp8Format& f, int width, float fixed_scale);

}  // namespace kvaudit::kv
