// fp8 e4m3 (OCP/NVIDIA "fn": bias 7, no infinities, max 448, NaN = S.1111.111) and e5m2 (bias 15,
// IEEE-like, max finite 57344) as vLLM's fp8 KV cache uses them (SPEC.md §3):
// x' = decode(encode_RNE_satfinite(x / scale)) · scale.
#pragma once
#include <cstdint>
#include <memory>

#include "kv/layout.h"  // Fp8Format, fp8_encode, fp8_decode (host and device)
#include "kv/row_quantizer.h"

namespace kvaudit::kv {

// Reference encoder written as the definition reads: NaN -> NaN; |x| >= max -> max (satfinite, inf
// included); subnormal range -> round(|x| / 2^(1-bias-M)); else exponent e = floor(log2|x|),
// mantissa round((|x|/2^e - 1)·2^M) with a carry into the exponent; round = nearest, ties to even.
uint8_t fp8_encode_ref(float x, const Fp8Format& f);
// fp8_encode over x [n] -> codes [n], vectorised (AVX2); equal to fp8_encode (tested).
void fp8_encode_span(const float* x, int64_t n, const Fp8Format& f, uint8_t* codes);
// fixed_scale > 0: every row uses it (1.0 = vLLM default, or the calibrated per-layer scale);
// fixed_scale == 0: dynamic, per row scale = max|x| / max_value stored as an fp32 parameter.
std::unique_ptr<RowQuantizer> make_fp8_quantizer(const Fp8Format& f, int width, float fixed_scale);

}  // namespace kvaudit::kv
