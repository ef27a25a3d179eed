// fp8 e4m3 / e5m2: all 256 decodes from the bit layout, encode boundaries, ties, saturation, NaN,
// subnormals, and the fast encoder against the reference one (SPEC.md §3).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "kv/policy.h"
#include "kv/schemes/fp8.h"

namespace kvaudit::kv {
namespace {

// Expected value of a code computed here from the layout (sign | exponent | mantissa), with pow.
double expected_decode(int code, int exp_bits, int man_bits, int bias, bool has_inf) {
  const int sign = code >> 7, e = (code >> man_bits) & ((1 << exp_bits) - 1), m = code & ((1 << man_bits) - 1);
  const int e_all = (1 << exp_bits) - 1;
  double mag;
  if (!has_inf && e == e_all && m == (1 << man_bits) - 1) return NAN;
  if (has_inf && e == e_all) return m ? NAN : (sign ? -INFINITY : INFINITY);
  if (e == 0) mag = m / std::pow(2.0, man_bits) * std::pow(2.0, 1 - bias);
  else mag = (1 + m / std::pow(2.0, man_bits)) * std::pow(2.0, e - bias);
  return sign ? -mag : mag;
}

TEST(Fp8, DecodesAll256CodesOfBothFormats) {
  for (int c = 0; c < 256; ++c) {
    const double e4 = expected_decode(c, 4, 3, 7, false), e5 = expected_decode(c, 5, 2, 15, true);
    const float d4 = fp8_decode(uint8_t(c), kE4M3), d5 = fp8_decode(uint8_t(c), kE5M2);
    if (std::isnan(e4)) EXPECT_TRUE(std::isnan(d4)) << c; else EXPECT_EQ(double(d4), e4) << c;
    if (std::isnan(e5)) EXPECT_TRUE(std::isnan(d5)) << c; else EXPECT_EQ(double(d5), e5) << c;
  }
  EXPECT_EQ(fp8_decode(0x7e, kE4M3), 448.0f);
  EXPECT_EQ(fp8_decode(0x01, kE4M3), 0x1p-9f);
  EXPECT_EQ(fp8_decode(0x7b, kE5M2), 57344.0f);
  EXPECT_EQ(fp8_decode(0x7c, kE5M2), INFINITY);
  EXPECT_EQ(fp8_decode(0x01, kE5M2), 0x1p-16f);
}

struct EncodeCase {
  float x;
  uint8_t e4m3, e5m2;
};

TEST(Fp8, EncodesBoundariesTiesOverflowNanSubnormals) {
  const EncodeCase cases[] = {
      {0.0f, 0x00, 0x00},
      {-0.0f, 0x80, 0x80},
      {1.0f, 0x38, 0x3c},
      {1.0625f, 0x38, 0x3c},     // e4m3 tie between 1 (M=0) and 1.125 (M=1): even -> 1
      {1.1875f, 0x3a, 0x3d},     // e4m3 tie 1.125/1.25 -> 1.25 (M=2); e5m2: 1.1875 nearer 1.25
      {1.125f, 0x39, 0x3c},      // e5m2 tie between 1 and 1.25 -> even (M=0)
      {448.0f, 0x7e, 0x5f},      // e4m3 max; e5m2 448 = 1.75·2^8
      {464.0f, 0x7e, 0x5f},      // e4m3: above max saturates (480 would be the NaN code)
      {1e6f, 0x7e, 0x7b},
      {57344.0f, 0x7e, 0x7b},    // e5m2 max finite
      {61440.0f, 0x7e, 0x7b},    // e5m2: the tie towards 2^16 saturates to max finite
      {INFINITY, 0x7e, 0x7b},    // satfinite: inf -> max
      {-INFINITY, 0xfe, 0xfb},
      {0x1p-10f, 0x00, 0x14},    // e4m3: half the smallest subnormal, tie -> 0
      {3 * 0x1p-10f, 0x02, 0x1a},  // e4m3: 1.5 subnormal units -> 2
      {0x1p-6f, 0x08, 0x24},     // e4m3 min normal
      {0x1p-6f - 0x1p-12f, 0x08, 0x24},  // rounds up into the min normal
      {0x1p-17f, 0x00, 0x00},    // e5m2: half the smallest subnormal -> 0
      {-0x1p-16f, 0x80, 0x81},   // e5m2 smallest subnormal (e4m3: underflows to -0)
  };
  for (const auto& c : cases) {
    EXPECT_EQ(fp8_encode_ref(c.x, kE4M3), c.e4m3) << c.x;
    EXPECT_EQ(fp8_encode_ref(c.x, kE5M2), c.e5m2) << c.x;
    EXPECT_EQ(fp8_encode(c.x, kE4M3), c.e4m3) << c.x;
    EXPECT_EQ(fp8_encode(c.x, kE5M2), c.e5m2) << c.x;
  }
  EXPECT_EQ(fp8_encode(NAN, kE4M3) & 0x7f, 0x7f);
  EXPECT_TRUE(std::isnan(fp8_decode(fp8_encode(NAN, kE5M2), kE5M2)));
}

TEST(Fp8, FastEncoderEqualsReferenceOverFloatSweep) {
  // Every float whose low 12 bits are one of these patterns: covers every rounding position of
  // both formats, exact ties (bits below the halfway bit zero) and their neighbours.
  // The vectorised span encoder is checked on the same values, 6 Mi at a time.
  const uint32_t lows[] = {0x000, 0x001, 0x7ff, 0x800, 0x801, 0xfff};
  std::vector<float> xs;
  for (uint32_t hi = 0; hi < (1u << 20); ++hi)
    for (uint32_t lo : lows) {
      const uint32_t u = hi << 12 | lo;
      float x;
      std::memcpy(&x, &u, 4);
      xs.push_back(x);
    }
  for (const Fp8Format* f : {&kE4M3, &kE5M2}) {
    std::vector<uint8_t> span(xs.size());
    fp8_encode_span(xs.data(), int64_t(xs.size()), *f, span.data());
    for (size_t i = 0; i < xs.size(); ++i) {
      const uint8_t ref = fp8_encode_ref(xs[i], *f);
      ASSERT_EQ(fp8_encode(xs[i], *f), ref) << xs[i];
      ASSERT_EQ(span[i], ref) << xs[i];
    }
  }
}

TEST(Fp8, CacheRoundTripsEveryCode) {
  // Every code's value through a scale-1 cache comes back as itself (NaN as NaN): encode and the
  // cache's vectorised decode agree with the layout for all 256 codes of both formats.
  for (const char* spec : {"fp8e4m3", "fp8e5m2"}) {
    const Fp8Format& f = spec[4] == '4' ? kE4M3 : kE5M2;
    std::vector<float> x(256);
    for (int c = 0; c < 256; ++c) x[c] = float(expected_decode(c, f.exp_bits, f.man_bits, f.bias, f.has_inf));
    auto cache = KvPolicy::parse(spec).make_cache(0, Role::K, {1, 256});
    cache->append(x.data(), 1);
    for (int c = 0; c < 256; ++c) {
      const float want = std::isinf(x[c]) ? std::copysign(f.max_value, x[c]) : x[c];  // satfinite
      if (std::isnan(want)) EXPECT_TRUE(std::isnan(cache->rows()[c])) << spec << " " << c;
      else EXPECT_EQ(cache->rows()[c], want) << spec << " " << c;
    }
  }
}

// The simulated cache's fused pass (divide, encode, decode, scale per 8 values) against the packed
// cache, which stores codes and decodes them (quantize + dequantize): bit for bit on every special
// value, for fixed, non-unit and dynamic scales.
TEST(Fp8, FusedSimulatedEqualsPackedOnSpecialValues) {
  const CacheGeometry g{1, 40};  // not a multiple of 8: the scalar tail too
  std::vector<float> x;
  const float specials[] = {0.0f, -0.0f, 1e-45f, -3e-40f, 448.0f, 449.0f, 464.0f, -1e30f, 57344.0f, 61440.0f,
                            INFINITY, -INFINITY, NAN, 0.0009765625f, 1.0625f, -1.1875f, 0.01953125f, 3.0f, 240.0f, 1e-8f};
  for (int t = 0; t < 6; ++t)
    for (int c = 0; c < g.width(); ++c) x.push_back(specials[(c + 7 * t) % 20] * (t % 2 ? 1.0f : -0.75f));
  for (int c = 0; c < g.width(); ++c) x.push_back(0.0f);  // an all-zero token (dynamic scale 1)
  for (const char* spec : {"fp8e4m3", "fp8e5m2", "fp8e4m3:scale=0.37", "fp8e5m2:scale=3", "fp8e4m3:scale=dynamic",
                           "fp8e5m2:scale=dynamic"}) {
    KvPolicy sim = KvPolicy::parse(spec), pk = KvPolicy::parse(spec);
    pk.set_storage(Storage::kPacked);
    auto a = sim.make_cache(0, Role::K, g), b = pk.make_cache(0, Role::K, g);
    a->append(x.data(), 7);
    b->append(x.data(), 7);
    EXPECT_EQ(0, std::memcmp(a->rows(), b->rows(), x.size() * sizeof(float))) << spec;
  }
}

TEST(Fp8, SchemesApplyScale) {
  const std::vector<float> x = {1.0625f, 500.0f, -3.0f, 0.1f};
  auto c = KvPolicy::parse("fp8e4m3").make_cache(0, Role::V, {1, 4});
  c->append(x.data(), 1);
  // scale 1.0: 1.0625 -> 1 (tie to even), 500 -> 448 (saturated), -3 exact, 0.1 -> 0.1015625 (13·2^-7).
  EXPECT_EQ(std::vector<float>(c->rows(), c->rows() + 4), (std::vector<float>{1.0f, 448.0f, -3.0f, 0.1015625f}));
  auto d = KvPolicy::parse("fp8e4m3:scale=2").make_cache(0, Role::V, {1, 4});
  d->append(x.data(), 1);
  // x/2 = 0.53125 -> 0.5 (tie: 0.5 M=0 vs 0.5625 M=1), 250 -> 256 (1.0·2^8 nearer than 240), -1.5, 0.05 -> 0.05078125.
  EXPECT_EQ(std::vector<float>(d->rows(), d->rows() + 4), (std::vector<float>{1.0f, 512.0f, -3.0f, 0.1015625f}));
  auto dyn = KvPolicy::parse("fp8e4m3:scale=dynamic").make_cache(0, Role::V, {1, 4});
  dyn->append(x.data(), 1);
  EXPECT_EQ(dyn->rows()[1], 448.0f * (500.0f / 448.0f));  // s = max|x|/448: 500/s rounds to 448
}

}  // namespace
}  // namespace kvaudit::kv
