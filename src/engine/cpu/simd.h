// AVX2/FMA building blocks shared by the CPU ops. One summation order for every dot product
// (8 lanes, fixed horizontal sum, scalar tail) so results are independent of tiling and batch.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstdint>

namespace kvaudit::engine::cpu {

// ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)): the one horizontal order every kernel uses.
inline float hsum8(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  const __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s1);
}

// Continues a dot product's scalar tail after the vector part (explicit fma: -ffp-contract=off).
inline float dot_tail(const float* a, const float* b, int64_t from, int64_t n, float s) {
  for (int64_t c = from; c < n; ++c) s = std::fma(a[c], b[c], s);
  return s;
}

inline float dot_inline(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), acc);
  return dot_tail(a, b, c, n, hsum8(acc));
}

// e^x for 8 lanes: x = n*ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2 so n*ln2 is exact),
// e^r by its degree-7 Taylor polynomial (truncation r^8/8! < 6e-9 relative, under 1 ulp), then
// scaled by 2^n built in the exponent field. x is clamped to [-87.3, 88.3] so 2^n stays a normal
// float: e^x saturates at ~2e38 above and ~1e-38 below, which callers (silu) tolerate.
// Element-wise with one fixed operation order, so every lane's result depends on its input only.
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);      // ln2 high part (exact n*hi)
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);          // ln2 low part
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

}  // namespace kvaudit::engine::cpu
