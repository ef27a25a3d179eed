#include "kv/schemes/fp8.h"
#include "kv/schemes/int_affine.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include <immintrin.h>

namespace kvaudit::kv {

uint8_t fp8_encode_ref(float x, const Fp8Format& f) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  if (std::isnan(x)) return sign | f.nan_code;
  const float a = std::fabs(x);
  if (a >= f.max_value) return sign | f.max_code;
  const int m_levels = 1 << f.man_bits;
  const float min_normal = std::ldexp(1.0f, 1 - f.bias);
  if (a < min_normal) {  // subnormal: multiples of 2^(1-bias-M); rounding up to 2^M gives the min normal code
    return sign | uint8_t(std::nearbyint(a / std::ldexp(1.0f, 1 - f.bias - f.man_bits)));
  }
  int k = 0;
  std::frexp(a, &k);  // a = fr·2^k, fr in [0.5, 1)
  int e = k - 1;
  int m = int(std::nearbyint((a / std::ldexp(1.0f, e) - 1.0f) * float(m_levels)));
  if (m == m_levels) {
    m = 0;
    ++e;
  }
  const int code = ((e + f.bias) << f.man_bits) | m;
  return sign | uint8_t(code > f.max_code ? f.max_code : code);
}

uint8_t fp8_encode(float x, const Fp8Format& f) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint8_t sign = uint8_t((u >> 24) & 0x80);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return sign | f.nan_code;
  if (u >= uint32_t(127 + 1 - f.bias) << 23) {  // normal in fp8: round the float's mantissa to M bits
    const uint32_t shift = 23 - f.man_bits;
    u += (1u << (shift - 1)) - 1 + ((u >> shift) & 1u);  // round to nearest, ties to even
    const int32_t code = int32_t(u >> shift) - int32_t(uint32_t(127 - f.bias) << f.man_bits);
    return sign | uint8_t(code > f.max_code ? f.max_code : code);
  }
  float a;
  std::memcpy(&a, &u, 4);
  // Exact power-of-two scaling into units of the smallest subnormal, then RNE.
  return sign | uint8_t(std::nearbyint(a * std::ldexp(1.0f, f.bias - 1 + f.man_bits)));
}

float fp8_decode(uint8_t code, const Fp8Format& f) {
  const bool neg = code & 0x80;
  const int e = (code & 0x7f) >> f.man_bits, m = code & ((1 << f.man_bits) - 1);
  const int e_max = (1 << f.exp_bits) - 1;
  float v;
  if (!f.has_inf && (code & 0x7f) == 0x7f) {
    v = std::nanf("");
  } else if (f.has_inf && e == e_max) {
    v = m == 0 ? INFINITY : std::nanf("");
  } else if (e == 0) {
    v = std::ldexp(float(m), 1 - f.bias - f.man_bits);
  } else {
    v = std::ldexp(1.0f + float(m) / float(1 << f.man_bits), e - f.bias);
  }
  return neg ? -v : v;
}

namespace {

// Broadcast constants of the vector encoder for one format.
struct Fp8EncodeConsts {
  int shift;
  __m256i abs_mask, inf_bits, min_normal, half_m1, one, rebias, max_code, nan_code;
  __m256 sub_scale;
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
        sub_scale(_mm256_set1_ps(std::ldexp(1.0f, f.bias - 1 + f.man_bits))) {}
};

// fp8_encode of 8 floats, as 8 int32 codes in [0, 255].
inline __m256i fp8_encode8(__m256 x, const Fp8EncodeConsts& k) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
  const __m256i a = _mm256_and_si256(u, k.abs_mask);
  // Normal: round the float's mantissa to M bits (ties to even), rebias, saturate (fp8_encode).
  const __m256i lsb = _mm256_and_si256(_mm256_srl_epi32(a, _mm_cvtsi32_si128(k.shift)), k.one);
  const __m256i r = _mm256_add_epi32(a, _mm256_add_epi32(k.half_m1, lsb));
  const __m256i cn =
      _mm256_min_epi32(_mm256_sub_epi32(_mm256_srl_epi32(r, _mm_cvtsi32_si128(k.shift)), k.rebias), k.max_code);
  // Subnormal: exact power-of-two scaling, then round to nearest even.
  const __m256 as = _mm256_mul_ps(_mm256_castsi256_ps(a), k.sub_scale);
  const __m256i cs = _mm256_cvtps_epi32(_mm256_round_ps(as, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m256i is_normal = _mm256_cmpgt_epi32(a, _mm256_sub_epi32(k.min_normal, k.one));
  __m256i c = _mm256_blendv_epi8(cs, cn, is_normal);
  c = _mm256_blendv_epi8(c, k.nan_code, _mm256_cmpgt_epi32(a, k.inf_bits));
  return _mm256_or_si256(c, sign);
}

// 8 int32 codes in [0, 255] -> 8 uint16 lanes.
inline __m128i narrow16(__m256i c) {
  return _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
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

namespace {

class Fp8Rows final : public RowQuantizer {
 public:
  Fp8Rows(const Fp8Format& f, int width, float fixed_scale) : f_(f), width_(width), fixed_(fixed_scale) {
    for (int c = 0; c < 256; ++c) table_[c] = fp8_decode(uint8_t(c), f);
  }
  int code_bits() const override { return 8; }
  int n_params() const override { return fixed_ > 0 ? 0 : 1; }
  // Eight codes (low 8 bytes) -> floats, through fp16: e5m2 is the top byte of an fp16; e4m3's
  // magnitude << 7 read as fp16 is its value · 2^-8 (subnormals included), so · 256 is exact;
  // e4m3's S.1111.111 is NaN. Equal to fp8_decode for all 256 codes (tests/kv/fp8_test.cc).
  __m256 decode8(__m128i codes8) const { return decode16(_mm_cvtepu8_epi16(codes8)); }
  // The same from 8 uint16 lanes.
  __m256 decode16(__m128i c16) const {
    if (f_.has_inf) return _mm256_cvtph_ps(_mm_slli_epi16(c16, 8));
    const __m128i mag = _mm_and_si128(c16, _mm_set1_epi16(0x7f));
    const __m128i sign = _mm_slli_epi16(_mm_and_si128(c16, _mm_set1_epi16(0x80)), 8);
    const __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(_mm_or_si128(_mm_slli_epi16(mag, 7), sign)), _mm256_set1_ps(256.0f));
    const __m256 nan_lanes = _mm256_castsi256_ps(_mm256_cvtepi16_epi32(_mm_cmpeq_epi16(mag, _mm_set1_epi16(0x7f))));
    return _mm256_blendv_ps(v, _mm256_set1_ps(std::nanf("")), nan_lanes);
  }
  int param_bytes() const override { return 4; }  // vLLM keeps fp8 scales in fp32
  // The scale of this row: the fixed one, or (dynamic) per token max|x| / max_value.
  float row_scale(const float* x) const {
    float s = fixed_;
    if (s == 0) {
      float lo, hi;
      minmax_span(x, width_, &lo, &hi);  // max|x| = max(-min, max)
      s = std::max(-lo, hi) / f_.max_value;
      if (!(s > 0) || !std::isfinite(s)) s = 1.0f;  // all zero, underflow or NaN: keep x / s defined
    }
    return s;
  }
  // Simulated: quantize then dequantize in one pass per 8 values (divide, encode, decode, scale),
  // the same operations in the same order as quantize() + dequantize().
  void quantize_dequantize(const float* x, float* out, uint8_t*, float*, std::vector<Outlier>*) const override {
    const float s = row_scale(x);
    const Fp8EncodeConsts k(f_);
    const __m256 vs = _mm256_set1_ps(s);
    int c = 0;
    for (; c + 8 <= width_; c += 8) {
      __m256 t = _mm256_loadu_ps(x + c);
      if (s != 1.0f) t = _mm256_div_ps(t, vs);  // x / 1 == x exactly
      const __m256 v = decode16(narrow16(fp8_encode8(t, k)));
      _mm256_storeu_ps(out + c, s == 1.0f ? v : _mm256_mul_ps(v, vs));
    }
    for (; c < width_; ++c) {
      const float v = table_[fp8_encode(s == 1.0f ? x[c] : x[c] / s, f_)];
      out[c] = s == 1.0f ? v : v * s;
    }
  }
  void quantize(const float* x, uint8_t* codes, float* params, std::vector<Outlier>*) const override {
    const float s = row_scale(x);
    if (fixed_ == 0) params[0] = s;
    if (s == 1.0f) {  // x / 1 == x exactly
      fp8_encode_span(x, width_, f_, codes);
    } else {
      scaled_.resize(width_);
      int c = 0;
      for (; c + 8 <= width_; c += 8)  // IEEE division, the same result as the scalar x / s
        _mm256_storeu_ps(&scaled_[c], _mm256_div_ps(_mm256_loadu_ps(x + c), _mm256_set1_ps(s)));
      for (; c < width_; ++c) scaled_[c] = x[c] / s;
      fp8_encode_span(scaled_.data(), width_, f_, codes);
    }
  }
  void dequantize(const uint8_t* codes, const float* params, float* out) const override {
    const float s = fixed_ > 0 ? fixed_ : params[0];
    int c = 0;
    for (; c + 8 <= width_; c += 8) {
      const __m256 v = decode8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + c)));
      _mm256_storeu_ps(out + c, s == 1.0f ? v : _mm256_mul_ps(v, _mm256_set1_ps(s)));
    }
    for (; c < width_; ++c) out[c] = s == 1.0f ? table_[codes[c]] : table_[codes[c]] * s;
  }

 private:
  Fp8Format f_;
  int width_;
  float fixed_;
  std::array<float, 256> table_;
  mutable std::vector<float> scaled_;  // [width] scratch: one cache uses its quantizer from one thread
};

}  // namespace

std::unique_ptr<RowQuantizer> make_fp8_quantizer(const Fp8Format& f, int width, float fixed_scale) {
  return std::make_unique<Fp8Rows>(f, width, fixed_scale);
}

}  // namespace kvaudit::kv
