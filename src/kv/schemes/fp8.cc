#include "kv/schemes/fp8.h"
#include "kv/schemes/fp8_simd.h"
#include "kv/schemes/int_affine.h"  // minmax_span

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

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

namespace {

class Fp8Rows final : public RowQuantizer {
 public:
  Fp8Rows(const Fp8Format& f, int width, float fixed_scale) : f_(f), width_(width), fixed_(fixed_scale) {
    for (int c = 0; c < 256; ++c) table_[c] = fp8_decode(uint8_t(c), f);
  }
  int code_bits() const override { return 8; }
  int n_params() const override { return fixed_ > 0 ? 0 : 1; }
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
    for (int64_t c = fp8_values_span(x, width_, s, f_, out); c < width_; ++c) {
      const float v = table_[fp8_encode(s == 1.0f ? x[c] : x[c] / s, f_)];
      out[c] = s == 1.0f ? v : v * s;
    }
  }
  void quantize(const float* x, uint8_t* codes, float* params, std::vector<Outlier>*) const override {
    const float s = row_scale(x);
    if (fixed_ == 0) params[0] = s;
    for (int64_t c = fp8_codes_span(x, width_, s, f_, codes); c < width_; ++c)
      codes[c] = fp8_encode(s == 1.0f ? x[c] : x[c] / s, f_);
  }
  void dequantize(const uint8_t* codes, const float* params, float* out) const override {
    const float s = fixed_ > 0 ? fixed_ : params[0];
    for (int64_t c = fp8_decode_span(codes, width_, s, f_, out); c < width_; ++c)
      out[c] = s == 1.0f ? table_[codes[c]] : table_[codes[c]] * s;
  }

 private:
  Fp8Format f_;
  int width_;
  float fixed_;
  std::array<float, 256> table_;
};

}  // namespace

std::unique_ptr<RowQuantizer> make_fp8_quantizer(const Fp8Format& f, int width, float fixed_scale) {
  return std::make_unique<Fp8Rows>(f, width, fixed_scale);
}

}  // namespace kvaudit::kv
