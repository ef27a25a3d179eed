// The AVX2 forms of fp8's definitions (kv/layout.h's fp8_encode / fp8_decode, SPEC.md §3): spans
// of codes, of fake-quantized values and of decoded values, each bit-identical to the scalar
// definition (tests/kv/fp8_test.cc, fp8_recip_test.cc); kv/schemes/fp8.cc's rows call them.
#include "kv/schemes/fp8_simd.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kv/schemes/fp8.h"
#include "kv/schemes/int_affine.h"  // kRecipRun

namespace kvaudit::kv {
namespace {

// Bit-pattern distance (in float ulps) from a rounding point within which a quotient computed as
// x·fl(1/s) is not trusted to encode like fl(x/s); see fp8_round8<true>.
constexpr int kUlpMargin = 8;

// Broadcast constants of the vector encoder for one format.
struct Fp8EncodeConsts {
  int shift;
  __m256i abs_mask, inf_bits, min_normal, half_m1, one, rebias, max_code, nan_code;
  __m256 sub_scale;
  // The reciprocal check (fp8_round8<true>, Fp8Check): low `shift` mantissa bits, kUlpMargin - their
  // halfway pattern, 2·kUlpMargin + 1, and (minus 1) the bit pattern from which both quotients are
  // normal in fp8 (2·kUlpMargin above the min normal).
  __m256i low_mask, near_off, near_width, normal_lim_m1;
  // Dequantized values (fp8_values8<has_inf>): the largest finite value's bits, the smallest
  // subnormal, the NaN that decoding gives (with the sign for e5m2).
  __m256i max_bits;
  __m256 sub_unit;
  __m256i nan_bits;
  explicit Fp8EncodeConsts(const Fp8Format& f)
      : shift(23 - f.man_bits),
        abs_mask(_mm256_set1_epi32(0x7fffffff)),
        inf_bits(_mm256_set1_epi32(0x7f800000)),
        min_normal(_mm256_set1_epi32((127 + 1 - f.bias) << 23)),
        half_m1(_mm256_set1_epi32((1 << (22 - f.man_bits)) - 1)),
        one(_mm256_set1_epi32(1)),
        rebias(_mm256_set1_epi32((127 - f.bias) << f.man_bits)),
        max_code(_mm256_set1_epi32(f.max_code)),
        nan_code(_mm256_set1_epi32(f.nan_code)),
        sub_scale(_mm256_set1_ps(std::ldexp(1.0f, f.bias - 1 + f.man_bits))),
        low_mask(_mm256_set1_epi32((1 << (23 - f.man_bits)) - 1)),
        near_off(_mm256_set1_epi32(kUlpMargin - (1 << (22 - f.man_bits)))),
        near_width(_mm256_set1_epi32(2 * kUlpMargin + 1)),
        normal_lim_m1(_mm256_set1_epi32(((127 + 1 - f.bias) << 23) + 2 * kUlpMargin - 1)),
        max_bits(_mm256_castps_si256(_mm256_set1_ps(f.max_value))),
        sub_unit(_mm256_set1_ps(std::ldexp(1.0f, 1 - f.bias - f.man_bits))),
        nan_bits(_mm256_set1_epi32(f.has_inf ? 0x7fe00000 : 0x7fc00000)) {}
};

// One vector of fp8_encode split in its steps, so that the simulated path can take the dequantized
// value from the rounding itself instead of decoding the codes.
struct Fp8Rounded {
  __m256i sign;       // x's sign bit, in place (0x80000000)
  __m256i rn;         // normal range: |x|'s bits with the mantissa rounded to M bits (ties to even)
  __m256 rs;          // subnormal range: |x| in units of the smallest subnormal, rounded (ties to even)
  __m256i is_normal;  // |x| >= the min normal
  __m256i is_nan;
};

// What fp8_round8<true> accumulates over a run, as unsigned minima per lane (one op per vector each):
// near = (low bits + kUlpMargin - half) mod 2^shift, below 2·kUlpMargin + 1 when the low bits are
// within kUlpMargin of the halfway pattern; small = |t'| bits - 1, below normal_lim - 1 when
// 0 < |t'| < normal_lim (zero wraps to the largest value).
struct Fp8Check {
  __m256i near = _mm256_set1_epi32(-1), small = _mm256_set1_epi32(-1);
  // No lane of the run was undecided.
  bool decided(const Fp8EncodeConsts& k) const {
    const __m256i ok_near = _mm256_cmpeq_epi32(_mm256_max_epu32(near, k.near_width), near);
    const __m256i ok_small = _mm256_cmpeq_epi32(_mm256_max_epu32(small, k.normal_lim_m1), small);
    return _mm256_movemask_epi8(_mm256_and_si256(ok_near, ok_small)) == -1;
  }
};

// fp8_round8<kCheck>: x holds t' = fl(x·r), r = fl(1/s) (r finite and normal), standing for t = fl(x/s);
// `check` accumulates the lanes where the codes of t' and t might differ (undecided). Why the check suffices:
// t' = (x/s)(1+e1)(1+e2), t = (x/s)(1+e3), |e| <= 2^-24, so |t' - t| < 3.0001·2^-24·|t|, less than
// 4 ulps of the smaller of the two: their bit patterns (monotone in the value) are at most 4 apart.
// The encoder is monotone in |t|, so two values get different codes only if a rounding point lies
// between them. In the normal range the rounding points are the midpoints of adjacent fp8 values
// (across a binade too), whose low 23-M mantissa bits are exactly 10..0; a power of two, the min
// normal and the saturation are not rounding points (the code does not jump there). So a lane whose
// low bits are more than kUlpMargin (8) from 10..0, with t' at least 2·kUlpMargin ulps above the min
// normal (then t is normal as well), encodes alike. Lanes between zero and that (subnormal range,
// first normals) are undecided: ~1e-4 of the values of a dynamically scaled e4m3 row. The other
// lanes are exact: x = ±0 gives ±0 both ways; x = ±inf gives ±inf both ways; x NaN gives x's NaN,
// quieted, both ways (x86 returns the NaN operand); a finite x whose quotient overflows saturates
// either way (both are far above max_value). Float-subnormal quotients are undecided lanes.
template <bool kCheck = false>
inline Fp8Rounded fp8_round8(__m256 x, const Fp8EncodeConsts& k, Fp8Check* check = nullptr) {
  const __m256i u = _mm256_castps_si256(x);
  Fp8Rounded r;
  r.sign = _mm256_andnot_si256(k.abs_mask, u);
  const __m256i a = _mm256_and_si256(u, k.abs_mask);
  // Normal: round the float's mantissa to M bits (ties to even): add half - 1 + the kept lsb.
  const __m256i lsb = _mm256_and_si256(_mm256_srl_epi32(a, _mm_cvtsi32_si128(k.shift)), k.one);
  r.rn = _mm256_add_epi32(a, _mm256_add_epi32(k.half_m1, lsb));
  // Subnormal: exact power-of-two scaling, then round to nearest even.
  const __m256 as = _mm256_mul_ps(_mm256_castsi256_ps(a), k.sub_scale);
  r.rs = _mm256_round_ps(as, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  r.is_normal = _mm256_cmpgt_epi32(a, _mm256_sub_epi32(k.min_normal, k.one));
  r.is_nan = _mm256_cmpgt_epi32(a, k.inf_bits);
  if constexpr (kCheck) {
    check->near = _mm256_min_epu32(check->near, _mm256_and_si256(_mm256_add_epi32(a, k.near_off), k.low_mask));
    check->small = _mm256_min_epu32(check->small, _mm256_sub_epi32(a, k.one));
  }
  return r;
}

// The codes (8 int32 lanes in [0, 255]): rebias and saturate the normal ones (fp8_encode).
inline __m256i fp8_codes8(const Fp8Rounded& r, const Fp8EncodeConsts& k) {
  const __m256i cn =
      _mm256_min_epi32(_mm256_sub_epi32(_mm256_srl_epi32(r.rn, _mm_cvtsi32_si128(k.shift)), k.rebias), k.max_code);
  __m256i c = _mm256_blendv_epi8(_mm256_cvtps_epi32(r.rs), cn, r.is_normal);
  c = _mm256_blendv_epi8(c, k.nan_code, r.is_nan);
  return _mm256_or_si256(c, _mm256_srli_epi32(r.sign, 24));
}

// The values Fp8Rows::decode16 gives for those codes, from the rounding: a normal code c <= max_code
// decodes to the float whose bits are (c + rebias) << shift, i.e. rn with the low bits cleared (a
// mantissa carry into the exponent included); saturation is a min on those bits (max_code's value);
// a subnormal code rs decodes to rs·2^(1-bias-M), exact. NaN: decode16's NaN (e4m3: +NaN whatever
// the sign; e5m2: fp16 0x7f00 widened, with the sign).
template <bool kSignedNan>
inline __m256 fp8_values8(const Fp8Rounded& r, const Fp8EncodeConsts& k) {
  const __m256i vn = _mm256_min_epi32(_mm256_andnot_si256(k.low_mask, r.rn), k.max_bits);
  __m256i v = _mm256_blendv_epi8(_mm256_castps_si256(_mm256_mul_ps(r.rs, k.sub_unit)), vn, r.is_normal);
  v = _mm256_or_si256(v, r.sign);
  const __m256i nan = kSignedNan ? _mm256_or_si256(k.nan_bits, r.sign) : k.nan_bits;
  return _mm256_castsi256_ps(_mm256_blendv_epi8(v, nan, r.is_nan));
}

// fp8_encode of 8 floats, as 8 int32 codes in [0, 255].
inline __m256i fp8_encode8(__m256 x, const Fp8EncodeConsts& k) { return fp8_codes8(fp8_round8(x, k), k); }

// 8 int32 codes in [0, 255] -> 8 uint16 lanes.
inline __m128i narrow16(__m256i c) {
  return _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
}


// Eight codes as 8 uint16 lanes -> floats, through fp16: e5m2 is the top byte of an fp16; e4m3's
// magnitude << 7 read as fp16 is its value · 2^-8 (subnormals included), so · 256 is exact;
// e4m3's S.1111.111 is NaN. Equal to fp8_decode for all 256 codes (tests/kv/fp8_test.cc).
__m256 fp8_decode16(__m128i c16, const Fp8Format& f) {
  if (f.has_inf) return _mm256_cvtph_ps(_mm_slli_epi16(c16, 8));
  const __m128i mag = _mm_and_si128(c16, _mm_set1_epi16(0x7f));
  const __m128i sign = _mm_slli_epi16(_mm_and_si128(c16, _mm_set1_epi16(0x80)), 8);
  const __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(_mm_or_si128(_mm_slli_epi16(mag, 7), sign)), _mm256_set1_ps(256.0f));
  const __m256 nan_lanes = _mm256_castsi256_ps(_mm256_cvtepi16_epi32(_mm_cmpeq_epi16(mag, _mm_set1_epi16(0x7f))));
  return _mm256_blendv_ps(v, _mm256_set1_ps(std::nanf("")), nan_lanes);
}

// x/s (x itself when s == 1: x / 1 == x exactly) rounded to fp8 (fp8_round8) for the first n/8·8
// values, 8 at a time: sink(c, rounding of x[c..c+8)). Returns that count. The division is a
// multiply by fl(1/s) checked by fp8_round8<true>; a run of kRecipRun values with an undecided lane
// is redone with the IEEE division (sink sees it again, last), so every code equals the scalar
// fp8_encode(x / s) (tests/kv/fp8_recip_test.cc).
template <class Sink>
int64_t scaled_rounding(const float* x, int64_t n, float s, const Fp8EncodeConsts& k, Sink&& sink) {
  const int64_t n8 = n / 8 * 8;
  if (s == 1.0f) {
    for (int64_t c = 0; c < n8; c += 8) sink(c, fp8_round8(_mm256_loadu_ps(x + c), k));
    return n8;
  }
  const float r = 1.0f / s;
  const bool recip = std::isnormal(r);  // the check's error bound needs a normal fl(1/s)
  const __m256 vs = _mm256_set1_ps(s), vr = _mm256_set1_ps(r);
  for (int64_t c0 = 0; c0 < n8; c0 += kRecipRun) {
    const int64_t c1 = std::min(n8, c0 + kRecipRun);
    if (recip) {
      Fp8Check check;
      for (int64_t c = c0; c < c1; c += 8) sink(c, fp8_round8<true>(_mm256_mul_ps(_mm256_loadu_ps(x + c), vr), k, &check));
      if (check.decided(k)) continue;
    }
    for (int64_t c = c0; c < c1; c += 8) sink(c, fp8_round8(_mm256_div_ps(_mm256_loadu_ps(x + c), vs), k));
  }
  return n8;
}

// fp8_values_span for one format: fp8_values8 = fp8_decode16(fp8_codes8) bit for bit, without the codes.
template <bool kHasInf>
int64_t values_span(const float* x, int64_t n, float s, const Fp8Format& f, float* out) {
  const Fp8EncodeConsts k(f);
  const __m256 vs = _mm256_set1_ps(s);
  // The rows of an append are consecutive: fetch the next one while this one is computed (the
  // hardware prefetcher stops at the 4 KiB page a row fills). Only a hint: never dereferenced.
  const uintptr_t next = reinterpret_cast<uintptr_t>(x + n);
  auto prefetch = [&](int64_t c) {
    if ((c & 15) == 0) _mm_prefetch(reinterpret_cast<const char*>(next + uintptr_t(c) * sizeof(float)), _MM_HINT_T0);
  };
  if (s == 1.0f) {
    return scaled_rounding(x, n, s, k, [&](int64_t c, const Fp8Rounded& r) {
      prefetch(c);
      _mm256_storeu_ps(out + c, fp8_values8<kHasInf>(r, k));
    });
  }
  return scaled_rounding(x, n, s, k, [&](int64_t c, const Fp8Rounded& r) {
    prefetch(c);
    _mm256_storeu_ps(out + c, _mm256_mul_ps(fp8_values8<kHasInf>(r, k), vs));
  });
}

}  // namespace

void fp8_encode_span(const float* x, int64_t n, const Fp8Format& f, uint8_t* codes) {
  const Fp8EncodeConsts k(f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i c16 = narrow16(fp8_encode8(_mm256_loadu_ps(x + i), k));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(c16, c16));
  }
  for (; i < n; ++i) codes[i] = fp8_encode(x[i], f);
}

int64_t fp8_codes_span(const float* x, int64_t n, float s, const Fp8Format& f, uint8_t* codes) {
  const Fp8EncodeConsts k(f);
  return scaled_rounding(x, n, s, k, [&](int64_t c, const Fp8Rounded& r) {
    const __m128i c16 = narrow16(fp8_codes8(r, k));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + c), _mm_packus_epi16(c16, c16));
  });
}

int64_t fp8_values_span(const float* x, int64_t n, float s, const Fp8Format& f, float* out) {
  return f.has_inf ? values_span<true>(x, n, s, f, out) : values_span<false>(x, n, s, f, out);
}

int64_t fp8_decode_span(const uint8_t* codes, int64_t n, float s, const Fp8Format& f, float* out) {
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 v = fp8_decode16(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + c))), f);
    _mm256_storeu_ps(out + c, s == 1.0f ? v : _mm256_mul_ps(v, _mm256_set1_ps(s)));
  }
  return c;
}

}  // namespace kvaudit::kv
