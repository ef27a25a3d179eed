// Element-wise spans and per-channel ranges the KV caches run on every appended row, in AVX2
// (span_simd.cc). Each is the loop of a scalar definition in core/half.h or <algorithm>, bit for
// bit (tests/kv/span_simd_test.cc); the formulas stay there, this file only vectorises them.
#pragma once
#include <cstdint>

namespace kvaudit::kv {

// out[i] = round_fp16(x[i]) (F16C: nearest even; NaN stays NaN). out may equal x.
void round_fp16_span(const float* x, int64_t n, float* out);
// round_fp16 of one value by F16C, the bits round_fp16_span gives a lane (NaN payloads included).
float round_fp16_f16c(float x);
// out[i] = round_bf16(x[i]) (nearest even; NaN -> quiet NaN with its top half, as float_to_bf16).
void round_bf16_span(const float* x, int64_t n, float* out);
// out[i] = 1.0f / x[i] (IEEE division).
void reciprocal_span(const float* x, int64_t n, float* out);
// For each channel c < wc, over rows x[1..n) in row order (x: [n, wc]):
// lo[c] = std::min(lo[c], v), hi[c] = std::max(hi[c], v); lo and hi hold row 0 on entry.
void minmax_rows(const float* x, int64_t n, int wc, float* lo, float* hi);

}  // namespace kvaudit::kv
