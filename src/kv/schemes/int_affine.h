// intB affine quantization, the reference formulas of SPEC.md §3 applied to one set of values (a
// token, a head, a group, a tensor or one channel of a block: the granularity picks the set).
// Everything in fp32, exactly as the formulas read (and as the research code's fp32 hooks compute):
// a packed cache stores s and z as fp32 parameters, so it reproduces x' = (q - z)·s bit for bit.
#pragma once
#include <cstdint>

#include "kv/layout.h"  // AffineParams and the scalar formulas, shared with the CUDA kernels

namespace kvaudit::kv {

struct IntAffine {
  int bits;
  bool sym;

  int qmin() const { return sym ? -(1 << (bits - 1)) : 0; }
  int qmax() const { return sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }
  // Offset added to a code so that it is stored unsigned in `bits` bits.
  int code_offset() const { return sym ? (1 << (bits - 1)) : 0; }

  // sym: s = max|x| / (2^(B-1) - 1); asym: s = max(max - min, ...) / (2^B - 1) floored at 1e-8,
  // z = clamp(round(-min/s), 0, 2^B-1). x: [n] with the given stride.
  AffineParams fit(const float* x, int64_t n, int64_t stride = 1) const;
  // Same, from a precomputed range (min, max; max|x| = max(-min, max)).
  AffineParams fit_range(float lo, float hi) const;
  // fit_range of n sets at once: lo, hi [n] -> scale, zero, qscale [n] (zero 0 when sym). Vectorised
  // across sets; bit-identical to fit_range (tests/kv/int_affine_fused_test.cc).
  void fit_ranges(const float* lo, const float* hi, int64_t n, float* scale, float* zero, float* qscale) const;
  // q = clamp(round(x/s) [+ z], qmin, qmax), stored as q + code_offset() in [0, 2^B).
  // round = round half to even (std::nearbyint in the default rounding mode; torch.round).
  uint8_t quantize(float x, AffineParams p) const;
  // x' = (q - z)·s (asym) or q·s (sym), from the stored code.
  float dequantize(uint8_t code, AffineParams p) const;

  // Fake-quantization of n contiguous values with shared params: out[i] = dequantize(quantize(x[i])).
  // Vectorised hot loop; bit-identical to the scalar definitions above (tests/kv/int_affine_test.cc).
  void quantize_span(const float* x, int64_t n, AffineParams p, uint8_t* codes) const;
  void dequantize_span(const uint8_t* codes, int64_t n, AffineParams p, float* out) const;
  // `channel`: one row of a block, value i with its own channel's parameters (quantize: the fp32
  // qscale[i] and zero[i]; dequantize: the stored scale[i] and zero[i]). Same
  // definitions as quantize()/dequantize(), vectorised across channels.
  void quantize_columns(const float* x, int64_t n, const float* qscale, const float* zero, uint8_t* codes) const;
  void dequantize_columns(const uint8_t* codes, int64_t n, const float* scale, const float* zero, float* out) const;

  // Simulated storage (the dequantized values only): out = dequantize_span(quantize_span(x)) and
  // out = dequantize_columns(quantize_columns(x)) in one pass, without materialising codes.
  // Bit-identical to the two-pass forms (tests/kv/int_affine_test.cc).
  void fake_quantize_span(const float* x, int64_t n, AffineParams p, float* out) const;
  // recip[i] = 1.0f / qscale[i] (the fused loops multiply and fall back to the division only where
  // that could change a code; see round_quotient in int_affine.cc). fp16_input: x is first rounded
  // through fp16 (round_fp16, the residual window's storage) on the way in.
  void fake_quantize_columns(const float* x, int64_t n, const float* qscale, const float* recip, const float* scale,
                             const float* zero, float* out, bool fp16_input = false) const;
  // fake_quantize_span over n_sets consecutive sets of len values, set s with its own parameters
  // (scale, zero, qscale [n_sets], as fit_ranges writes them): x, out [n_sets, len].
  void fake_quantize_sets(const float* x, int64_t n_sets, int64_t len, const float* scale, const float* zero,
                          const float* qscale, float* out) const;
};

// Shared by the reciprocal fast paths (intB in int_affine_simd.cc, fp8 in fp8_simd.cc): a division
// x/s is replaced by x·fl(1/s) plus a per-lane check that the rounded result cannot differ; lanes are
// checked in runs of kRecipRun values and a run with an undecided lane is recomputed with the
// division. Short enough that ties (common in fp16-rounded KIVI blocks: ~1 row in 6 of 1024 values
// has one) redo little, long enough that the check is one branch per 8 vectors.
inline constexpr int64_t kRecipRun = 64;

// Minimum and maximum of x [n] (0, 0 when n == 0).
void minmax_span(const float* x, int64_t n, float* lo, float* hi);
// minmax_span of n_sets consecutive sets of `len` values each: x [n_sets, len] -> lo, hi [n_sets].
// Eight sets at a time through an 8x8 transpose, in minmax_span's exact comparison order (so ±0 and
// NaN resolve the same way).
void minmax_sets(const float* x, int64_t n_sets, int64_t len, float* lo, float* hi);

}  // namespace kvaudit::kv
