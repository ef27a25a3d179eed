#include "kv/schemes/int_affine.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/half.h"

namespace kvaudit::kv {
namespace {

constexpr float kAsymScaleFloor = 1e-8f;  // SPEC.md §3: asymmetric s floored at 1e-8 (the paper's clamp)
constexpr float kMaxScale = std::numeric_limits<float>::max();

// The stored scale: s itself (fp32), so that x' = (q - z)·s is the SPEC formula exactly and matches
// the research code's fp32 hooks (tests/fixtures/kv_paper: fp16 scales moved tiny-model logits by
// 1e-2 relative, fp32 scales match to 1e-6). Kept finite.
float stored_scale(float s) { return std::isfinite(s) ? s : kMaxScale; }

}  // namespace

AffineParams IntAffine::fit_range(float lo, float hi) const {
  AffineParams p;
  if (sym) {
    p.qscale = std::max(std::fabs(lo), std::fabs(hi)) / float(qmax());  // s = max|x| / (2^(B-1) - 1)
    p.scale = stored_scale(p.qscale);
    return p;
  }
  p.qscale = std::max((hi - lo) / float(qmax()), kAsymScaleFloor);  // s = (max - min) / (2^B - 1)
  p.scale = stored_scale(p.qscale);
  const float z = std::nearbyint(-lo / p.qscale);  // z = clamp(round(-min/s), 0, 2^B-1)
  p.zero = z > float(qmax()) ? float(qmax()) : (z >= 0 ? z : 0.0f);
  return p;
}

void minmax_span(const float* x, int64_t n, float* lo_out, float* hi_out) {
  float lo = 0, hi = 0;
  if (n > 0) lo = hi = x[0];
  int64_t i = 0;
  if (n >= 8) {  // lane-wise min/max; the order of a min/max reduction does not change its result
    __m256 vlo = _mm256_loadu_ps(x), vhi = vlo;
    for (i = 8; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(x + i);
      vlo = _mm256_min_ps(v, vlo);  // v < lo ? v : lo, as std::min(lo, v)
      vhi = _mm256_max_ps(v, vhi);
    }
    alignas(32) float l[8], h[8];
    _mm256_store_ps(l, vlo);
    _mm256_store_ps(h, vhi);
    lo = l[0], hi = h[0];
    for (int k = 1; k < 8; ++k) lo = std::min(lo, l[k]), hi = std::max(hi, h[k]);
  }
  for (; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  *lo_out = lo;
  *hi_out = hi;
}

AffineParams IntAffine::fit(const float* x, int64_t n, int64_t stride) const {
  float lo = 0, hi = 0;
  if (stride == 1) {
    minmax_span(x, n, &lo, &hi);
    return fit_range(lo, hi);
  }
  if (n > 0) lo = hi = x[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, x[i * stride]);
    hi = std::max(hi, x[i * stride]);
  }
  return fit_range(lo, hi);
}

void IntAffine::quantize_columns(const float* x, int64_t n, const float* qscale, const float* zero,
                                 uint8_t* codes) const {
  int64_t i = 0;
  const __m256 vlo = _mm256_set1_ps(float(qmin())), vhi = _mm256_set1_ps(float(qmax()));
  const __m256i voff = _mm256_set1_epi32(code_offset());
  for (; i + 8 <= n; i += 8) {
    const __m256 vs = _mm256_loadu_ps(qscale + i);
    __m256 t = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
    if (!sym) t = _mm256_add_ps(t, _mm256_loadu_ps(zero + i));
    __m256 q = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm256_min_ps(_mm256_max_ps(q, vlo), vhi);
    __m256i c = _mm256_add_epi32(_mm256_cvtps_epi32(q), voff);
    // A zero scale stores code_offset() (see quantize()).
    const __m256i zero_scale = _mm256_castps_si256(_mm256_cmp_ps(vs, _mm256_setzero_ps(), _CMP_EQ_OQ));
    c = _mm256_blendv_epi8(c, voff, zero_scale);
    __m128i c16 = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(c16, c16));
  }
  for (; i < n; ++i) codes[i] = quantize(x[i], {0, sym ? 0.0f : zero[i], qscale[i]});
}

void IntAffine::dequantize_columns(const uint8_t* codes, int64_t n, const float* scale, const float* zero,
                                   float* out) const {
  int64_t i = 0;
  const __m256i voff = _mm256_set1_epi32(code_offset());
  for (; i + 8 <= n; i += 8) {
    const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
    __m256 q = sym ? _mm256_cvtepi32_ps(_mm256_sub_epi32(c, voff))
                   : _mm256_sub_ps(_mm256_cvtepi32_ps(c), _mm256_loadu_ps(zero + i));  // exact: small integers
    _mm256_storeu_ps(out + i, _mm256_mul_ps(q, _mm256_loadu_ps(scale + i)));
  }
  for (; i < n; ++i) out[i] = dequantize(codes[i], {scale[i], sym ? 0.0f : zero[i]});
}

uint8_t IntAffine::quantize(float x, AffineParams p) const {
  // An all-zero set (sym: s = 0) stores zeros.
  if (p.qscale == 0) return uint8_t(code_offset());
  float t = x / p.qscale;
  if (!sym) t = t + p.zero;
  float q = std::nearbyint(t);
  if (!(q >= float(qmin()))) q = float(qmin());  // NaN saturates low, like the vector path
  if (q > float(qmax())) q = float(qmax());
  return uint8_t(int(q) + code_offset());
}

float IntAffine::dequantize(uint8_t code, AffineParams p) const {
  const int zc = sym ? code_offset() : int(p.zero);
  return float(int(code) - zc) * p.scale;
}

void IntAffine::quantize_span(const float* x, int64_t n, AffineParams p, uint8_t* codes) const {
  int64_t i = 0;
  if (p.qscale == 0) {
    std::fill(codes, codes + n, uint8_t(code_offset()));
    return;
  }
  const __m256 vs = _mm256_set1_ps(p.qscale), vz = _mm256_set1_ps(sym ? 0.0f : p.zero);
  const __m256 vlo = _mm256_set1_ps(float(qmin())), vhi = _mm256_set1_ps(float(qmax()));
  const __m256i voff = _mm256_set1_epi32(code_offset());
  for (; i + 8 <= n; i += 8) {
    __m256 t = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
    if (!sym) t = _mm256_add_ps(t, vz);
    __m256 q = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm256_min_ps(_mm256_max_ps(q, vlo), vhi);  // max(NaN, lo) = lo
    __m256i c = _mm256_add_epi32(_mm256_cvtps_epi32(q), voff);
    __m128i c16 = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    __m128i c8 = _mm_packus_epi16(c16, c16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), c8);
  }
  for (; i < n; ++i) codes[i] = quantize(x[i], p);
}

void IntAffine::dequantize_span(const uint8_t* codes, int64_t n, AffineParams p, float* out) const {
  const int zc = sym ? code_offset() : int(p.zero);
  const __m256i vzc = _mm256_set1_epi32(zc);
  const __m256 vs = _mm256_set1_ps(p.scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(c, vzc)), vs));
  }
  for (; i < n; ++i) out[i] = dequantize(codes[i], p);
}

}  // namespace kvaudit::kv
