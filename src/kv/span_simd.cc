// The AVX2 forms of kv/span_simd.h: each bit-identical to the scalar loop it names there.
#include "kv/span_simd.h"

#include <immintrin.h>

#include <algorithm>

#include "core/half.h"

namespace kvaudit::kv {

void round_fp16_span(const float* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
  for (; i < n; ++i) out[i] = round_fp16(x[i]);
}

float round_fp16_f16c(float x) { return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }

// 8 at a time: bits + 0x7fff + lsb, low half cleared; NaN -> its bits | 0x400000 (quiet), top half kept.
void round_bf16_span(const float* x, int64_t n, float* out) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf_bits = _mm256_set1_epi32(0x7f800000);
  const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1), hi = _mm256_set1_epi32(int(0xffff0000u));
  const __m256i quiet = _mm256_set1_epi32(0x400000);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i b = _mm256_castps_si256(_mm256_loadu_ps(x + i));
    const __m256i r = _mm256_add_epi32(b, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(b, 16), one)));
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(b, abs_mask), inf_bits);
    const __m256i v = _mm256_blendv_epi8(r, _mm256_or_si256(b, quiet), nan);
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_and_si256(v, hi)));
  }
  for (; i < n; ++i) out[i] = round_bf16(x[i]);
}

void reciprocal_span(const float* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_loadu_ps(x + i)));
  for (; i < n; ++i) out[i] = 1.0f / x[i];
}

// Up to eight rows at a time (the first group takes (n - 1) % 8 of them, so the others are full),
// still in row order per channel: min_ps(v, lo) = v < lo ? v : lo, exactly std::min(lo, v),
// applied for rows r, r+1, ... in turn.
void minmax_rows(const float* x, int64_t n, int wc, float* lo, float* hi) {
  for (int64_t r = 1, m = (n - 1) % 8 ? (n - 1) % 8 : 8; r < n; r += m, m = 8) {
    const float* xr = x + r * wc;
    for (int c = 0; c + 8 <= wc; c += 8) {
      __m256 l = _mm256_loadu_ps(lo + c), h = _mm256_loadu_ps(hi + c);
      for (int64_t k = 0; k < m; ++k) {
        const __m256 v = _mm256_loadu_ps(xr + k * wc + c);
        l = _mm256_min_ps(v, l);
        h = _mm256_max_ps(v, h);
      }
      _mm256_storeu_ps(lo + c, l);
      _mm256_storeu_ps(hi + c, h);
    }
    for (int64_t k = 0; k < m; ++k)
      for (int c = wc / 8 * 8; c < wc; ++c) {
        lo[c] = std::min(lo[c], xr[k * wc + c]);
        hi[c] = std::max(hi[c], xr[k * wc + c]);
      }
  }
}

}  // namespace kvaudit::kv
