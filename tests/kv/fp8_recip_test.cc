// fp8 with a scale s != 1 (dynamic per token, or calibrated): the quantizer multiplies by fl(1/s)
// and redoes a run with the IEEE division where that could change a code (fp8.cc fp8_round8). Its
// codes and simulated values must be those of the definition x' = decode(encode(x / s))·s, with the
// division, bit for bit: checked here against fp8_encode_ref(x / s) on random rows and on values
// placed at and around every rounding point (where x·fl(1/s) alone does round differently), ties,
// subnormals, saturation, signed zeros and zero rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kv/schemes/fp8.h"

namespace kvaudit::kv {
namespace {

constexpr int kWidth = 1027;  // 128 vectors and a scalar tail of 3

struct Format {
  const char* name;
  Fp8Format f;
};
const Format kFormats[] = {{"e4m3", kE4M3}, {"e5m2", kE5M2}};

// The scale the definition gives a row: fixed, or max|x| / max_value (1 when that is 0, NaN, inf
// or underflows), computed here with a plain loop.
float expected_scale(const std::vector<float>& x, const Fp8Format& f, float fixed) {
  if (fixed > 0) return fixed;
  float m = 0;
  for (float v : x) m = std::fabs(v) > m ? std::fabs(v) : m;
  const float s = m / f.max_value;
  return (s > 0 && std::isfinite(s)) ? s : 1.0f;
}

// Codes and simulated values of one row against the definition with the IEEE division; returns the
// number of values compared.
int expect_row_is_definition(const Fp8Format& f, float fixed, const std::vector<float>& x, const char* what) {
  const auto q = make_fp8_quantizer(f, int(x.size()), fixed);
  std::vector<uint8_t> codes(x.size()), scratch(x.size());
  float param = 0, scratch_param = 0;
  std::vector<float> out(x.size());
  q->quantize(x.data(), codes.data(), &param, nullptr);
  q->quantize_dequantize(x.data(), out.data(), scratch.data(), &scratch_param, nullptr);
  const float s = expected_scale(x, f, fixed);
  if (fixed == 0) {
    EXPECT_EQ(param, s) << what;
  }
  for (size_t c = 0; c < x.size(); ++c) {
    const uint8_t want = fp8_encode_ref(s == 1.0f ? x[c] : x[c] / s, f);
    EXPECT_EQ(int(codes[c]), int(want)) << what << " x[" << c << "]=" << x[c] << " s=" << s;
    const float v = fp8_decode(want, f), want_out = s == 1.0f ? v : v * s;
    if (std::isnan(want_out)) {
      EXPECT_TRUE(std::isnan(out[c])) << what << " x[" << c << "]";
    } else {
      EXPECT_EQ(0, std::memcmp(&out[c], &want_out, 4)) << what << " x[" << c << "]=" << x[c] << " out " << out[c]
                                                       << " want " << want_out;
    }
    if (::testing::Test::HasFailure()) return int(c);  // one report per row is enough
  }
  return int(x.size());
}

// Every positive rounding point of the format: midpoints of adjacent finite values (subnormal ones
// included) and, for saturation, max_value itself.
std::vector<float> rounding_points(const Fp8Format& f) {
  std::vector<float> p;
  for (int c = 0; c < f.max_code; ++c) p.push_back(0.5f * (fp8_decode(uint8_t(c), f) + fp8_decode(uint8_t(c + 1), f)));
  p.push_back(f.max_value);
  return p;
}

// Rows whose values sit at b·s and a few ulps around it for every rounding point b, so that x/s
// falls on both sides of b; the first value sets the dynamic scale s = row_max / max_value.
std::vector<std::vector<float>> adversarial_rows(const Fp8Format& f, float row_max) {
  const float s = row_max / f.max_value;
  std::vector<float> vals;
  for (float b : rounding_points(f)) {
    const float centre = b * s;
    float lo = centre, hi = centre;
    vals.push_back(centre);
    for (int k = 0; k < 4; ++k) {
      lo = std::nextafter(lo, 0.0f);
      hi = std::nextafter(hi, INFINITY);
      vals.push_back(lo);
      if (hi <= row_max) vals.push_back(hi);
    }
  }
  std::vector<std::vector<float>> rows;
  for (size_t i = 0; i < vals.size(); i += kWidth - 1) {
    std::vector<float> r(kWidth, 0.0f);
    r[0] = row_max;
    for (size_t k = 0; k + 1 < size_t(kWidth); ++k) {
      const float v = vals[(i + k) % vals.size()];
      r[k + 1] = (k % 3 == 1) ? -v : v;  // both signs
    }
    rows.push_back(r);
  }
  return rows;
}

TEST(Fp8Recip, DynamicScaleEqualsDivisionOnRoundingPoints) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> ud(0.01f, 100.0f);
  for (const Format& fm : kFormats) {
    // Power-of-two scales (exact ties: x/s is the rounding point itself), s = 1, and arbitrary ones.
    std::vector<float> maxima = {fm.f.max_value, 2.0f * fm.f.max_value, 0.25f * fm.f.max_value, 3.0f, 0.37f, 1e-3f};
    for (int k = 0; k < 6; ++k) maxima.push_back(ud(rng));
    int reciprocal_differs = 0;
    for (float m : maxima) {
      const float s = m / fm.f.max_value, r = 1.0f / s;
      for (const auto& row : adversarial_rows(fm.f, m)) {
        for (float v : row) reciprocal_differs += fp8_encode_ref(v * r, fm.f) != fp8_encode_ref(v / s, fm.f);
        EXPECT_EQ(expect_row_is_definition(fm.f, 0.0f, row, fm.name), kWidth) << fm.name << " max " << m;
      }
    }
    // The rows do exercise the check: the reciprocal alone would change codes there.
    EXPECT_GT(reciprocal_differs, 0) << fm.name;
  }
}

TEST(Fp8Recip, DynamicAndFixedScaleEqualDivisionOnRandomRows) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> mag(-30.0f, 30.0f);
  for (const Format& fm : kFormats) {
    for (int t = 0; t < 40; ++t) {
      std::vector<float> x(kWidth);
      const float sigma = std::ldexp(1.0f, int(mag(rng)));  // scales from 2^-30 to 2^30
      for (float& v : x) v = nd(rng) * sigma;
      if (t % 4 == 1)  // values spread over many binades: subnormal fp8 codes after scaling
        for (float& v : x) v *= std::ldexp(1.0f, int(mag(rng) / 2));
      EXPECT_EQ(expect_row_is_definition(fm.f, 0.0f, x, fm.name), kWidth) << fm.name << " row " << t;
      EXPECT_EQ(expect_row_is_definition(fm.f, 0.37f, x, fm.name), kWidth) << fm.name << " fixed, row " << t;
    }
  }
}

TEST(Fp8Recip, SpecialRowsEqualDivision) {
  const float tiny = std::ldexp(1.0f, -149);  // smallest float subnormal
  for (const Format& fm : kFormats) {
    std::vector<std::vector<float>> rows;
    rows.push_back(std::vector<float>(kWidth, 0.0f));   // zero row: s = 1
    rows.push_back(std::vector<float>(kWidth, -0.0f));  // -0 row
    std::vector<float> r(kWidth);
    for (int c = 0; c < kWidth; ++c) r[c] = (c % 5 == 0) ? 0.0f : (c % 5 == 1 ? -0.0f : tiny * float(c % 7));
    rows.push_back(r);  // float subnormals only: s underflows to 0 -> 1
    for (int c = 0; c < kWidth; ++c) r[c] = c == 3 ? 1e-30f : (c % 2 ? -0.0f : 1e-38f * float(c % 11));
    rows.push_back(r);  // tiny s (1/s near the top of the float range), zeros among the values
    for (int c = 0; c < kWidth; ++c) r[c] = c == 0 ? 3e38f : std::ldexp(float(c % 13), c % 60);
    rows.push_back(r);  // huge s: most quotients subnormal or zero in fp8
    for (const auto& row : rows) {
      EXPECT_EQ(expect_row_is_definition(fm.f, 0.0f, row, fm.name), kWidth) << fm.name;
      EXPECT_EQ(expect_row_is_definition(fm.f, 0.37f, row, fm.name), kWidth) << fm.name;
    }
    // Fixed scale: saturation, inf and NaN pass through the division's results.
    for (int c = 0; c < kWidth; ++c) {
      const float specials[] = {fm.f.max_value * 0.37f * 1.01f, -1e38f, INFINITY, -INFINITY, NAN, 2.5f, -0.0f};
      r[c] = specials[c % 7];
    }
    EXPECT_EQ(expect_row_is_definition(fm.f, 0.37f, r, fm.name), kWidth) << fm.name;
  }
}

}  // namespace
}  // namespace kvaudit::kv
