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

}  // namespace kvaudit::engine::cpu
