// The q8_0 and q4_0 blocks of the simulated cache's rows (ggml_quantize_dequantize_row), AVX2:
// quantize and dequantize in one pass, bit-identical to the reference formulas of kv/ggml_block.h
// (tests/kv/llama_cpp_test.cc); other types and short blocks run the reference.
#include <immintrin.h>

#include <algorithm>

#include "core/half.h"
#include "kv/schemes/llama_cpp.h"

namespace kvaudit::kv {
namespace {

// Max |x| over a block of 32 (NaN skipped, as std::max(amax, |x|) from 0 does), and the lanes equal
// to it, in order (bit j: x[j]).
inline float block_amax(const float* x, uint32_t* at_max) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 a[4], acc = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    a[k] = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k));
    acc = _mm256_max_ps(a[k], acc);  // |x| > acc ? |x| : acc: NaN keeps acc
  }
  alignas(32) float l[8];
  _mm256_store_ps(l, acc);
  float amax = 0;  // non-negative, non-NaN lanes: any order gives the same maximum
  for (float v : l) amax = std::max(amax, v);
  const __m256 vm = _mm256_set1_ps(amax);
  uint32_t bits = 0;
  for (int k = 0; k < 4; ++k) bits |= uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(a[k], vm, _CMP_EQ_OQ))) << (8 * k);
  *at_max = bits;
  return amax;
}

// int8_t(float) as the reference compiles it (cvttss2si, then the low byte): 8 lanes, sign-extended.
inline __m256i trunc_int8(__m256 v) {
  return _mm256_srai_epi32(_mm256_slli_epi32(_mm256_cvttps_epi32(v), 24), 24);
}

// q8_0 over one block of 32: ggml_quantize_block + ggml_dequantize, vectorised.
void q8_0_block_fast(const float* x, float* out) {
  uint32_t at_max;
  const float amax = block_amax(x, &at_max);
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  const __m256 vid = _mm256_set1_ps(id), vd = _mm256_set1_ps(round_fp16(d));
  const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  for (int k = 0; k < 4; ++k) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid);
    // roundf: half away from zero. trunc(v) plus ±1 when |v - trunc(v)| >= 1/2 (exact difference).
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 away = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, t)), half, _CMP_GE_OQ);
    const __m256 r = _mm256_add_ps(t, _mm256_and_ps(away, _mm256_or_ps(_mm256_and_ps(v, sign), one)));
    _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(trunc_int8(r)), vd));
  }
}

// q4_0 over one block of 32, likewise.
void q4_0_block_fast(const float* x, float* out) {
  uint32_t at_max;
  const float amax = block_amax(x, &at_max);
  const float m = amax > 0 ? x[__builtin_ctz(at_max)] : 0.0f;  // signed_max: the first largest |x|
  const float d = m / -8.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  const __m256 vid = _mm256_set1_ps(id), vd = _mm256_set1_ps(round_fp16(d)), bias = _mm256_set1_ps(8.5f);
  const __m256i fifteen = _mm256_set1_epi32(15), byte = _mm256_set1_epi32(0xff), eight = _mm256_set1_epi32(8);
  for (int k = 0; k < 4; ++k) {
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid), bias);
    const __m256i code = _mm256_and_si256(_mm256_min_epi32(trunc_int8(v), fifteen), byte);  // uint8_t(min(15, q))
    _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(code, eight)), vd));
  }
}

}  // namespace

void ggml_quantize_dequantize_row(SchemeKind kind, const float* x, int width, float* out) {
  for (int c0 = 0; c0 < width; c0 += kGgmlBlock) {
    const int n = std::min(kGgmlBlock, width - c0);
    if (n == kGgmlBlock && kind == SchemeKind::kQ8_0) {
      q8_0_block_fast(x + c0, out + c0);
    } else if (n == kGgmlBlock && kind == SchemeKind::kQ4_0) {
      q4_0_block_fast(x + c0, out + c0);
    } else {
      const GgmlBlock b = ggml_quantize_block(kind, x + c0, n);
      for (int j = 0; j < n; ++j) out[c0 + j] = ggml_dequantize(kind, b.codes[j], b.d, b.m);
    }
  }
}

}  // namespace kvaudit::kv
