#include "kv/schemes/fp8.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

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

class Fp8Rows final : public RowQuantizer {
 public:
  Fp8Rows(const Fp8Format& f, int width, float fixed_scale) : f_(f), width_(width), fixed_(fixed_scale) {
    for (int c = 0; c < 256; ++c) table_[c] = fp8_decode(uint8_t(c), f);
  }
  int code_bits() const override { return 8; }
  int n_params() const override { return fixed_ > 0 ? 0 : 1; }
  int param_bytes() const override { return 4; }  // vLLM keeps fp8 scales in fp32
  void quantize(const float* x, uint8_t* codes, float* params, std::vector<Outlier>*) const override {
    float s = fixed_;
    if (s == 0) {  // dynamic: per token max|x| / max_value
      float amax = 0;
      for (int c = 0; c < width_; ++c) amax = std::max(amax, std::fabs(x[c]));
      s = amax / f_.max_value;
      if (!(s > 0) || !std::isfinite(s)) s = 1.0f;  // all zero, underflow or NaN: keep x / s defined
      params[0] = s;
    }
    if (s == 1.0f) {  // x / 1 == x exactly
      for (int c = 0; c < width_; ++c) codes[c] = fp8_encode(x[c], f_);
    } else {
      for (int c = 0; c < width_; ++c) codes[c] = fp8_encode(x[c] / s, f_);
    }
  }
  void dequantize(const uint8_t* codes, const float* params, float* out) const override {
    const float s = fixed_ > 0 ? fixed_ : params[0];
    if (s == 1.0f) {
      for (int c = 0; c < width_; ++c) out[c] = table_[codes[c]];
    } else {
      for (int c = 0; c < width_; ++c) out[c] = table_[codes[c]] * s;
    }
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
