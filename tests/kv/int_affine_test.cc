// intB affine quantization against hand-worked values (SPEC.md §3 formulas; scales and zero points in
// fp32, as kv/schemes/int_affine.h stores them), and the vectorised paths against the scalar one.
#include <gtest/gtest.h>

#include <random>

#include "kv/policy.h"
#include "kv/schemes/int_affine.h"

namespace kvaudit::kv {
namespace {

std::vector<float> fake_quant(const std::string& spec, Role role, CacheGeometry g, const std::vector<float>& x) {
  auto cache = KvPolicy::parse(spec).make_cache(0, role, g);
  cache->append(x.data(), int64_t(x.size()) / g.width());
  return {cache->rows(), cache->rows() + x.size()};
}

TEST(IntAffine, SymTokenRoundsHalfToEven) {
  // int2 sym: s = 3/1 = 3, q = round(x/3) in [-2, 1]: 0.5 -> 0 and -0.5 -> -0 (ties to even).
  EXPECT_EQ(fake_quant("int2:token:sym", Role::K, {1, 4}, {3, -3, 1.5f, -1.5f}), (std::vector<float>{3, -3, 0, 0}));
  // int3 sym: s = 6/3 = 2; x/s = 3, -3, 0.5, 2.5 -> 3, -3, 0, 2.
  EXPECT_EQ(fake_quant("int3:token:sym", Role::K, {1, 4}, {6, -6, 1, 5}), (std::vector<float>{6, -6, 0, 4}));
}

TEST(IntAffine, SymScaleIsFp32) {
  // int8 sym: s = 1/127: q(1) = 127, q(-0.1) = round(-12.7) = -13; x' = q·s in fp32.
  const float s = 1.0f / 127;
  EXPECT_EQ(fake_quant("int8:token:sym", Role::K, {1, 2}, {1.0f, -0.1f}), (std::vector<float>{127 * s, -13 * s}));
}

TEST(IntAffine, AsymZeroPointAndClamp) {
  // int2 asym: s = 3/3 = 1, z = round(1) = 1, q = round(x + 1): 0, round(1.5) = 2, 3 -> x' = -1, 1, 2.
  EXPECT_EQ(fake_quant("int2:token:asym", Role::K, {1, 3}, {-1, 0.5f, 2}), (std::vector<float>{-1, 1, 2}));
  // A positive minimum: z = clamp(round(-2), 0, 3) = 0, q = clamp(round(x), 0, 3): 2, 3, 3.
  EXPECT_EQ(fake_quant("int2:token:asym", Role::K, {1, 3}, {2, 4, 5}), (std::vector<float>{2, 3, 3}));
  // Default is asym.
  EXPECT_EQ(fake_quant("int2:token", Role::K, {1, 3}, {2, 4, 5}), (std::vector<float>{2, 3, 3}));
}

TEST(IntAffine, HeadGroupAndTokenGranularities) {
  const std::vector<float> x = {1, -1, 10, 5};
  // head (2 heads x 2): s = 1 -> 1, -1; s = 10 -> 10, round(0.5) = 0.
  EXPECT_EQ(fake_quant("int2:head:sym", Role::K, {2, 2}, x), (std::vector<float>{1, -1, 10, 0}));
  EXPECT_EQ(fake_quant("int2:group:sym:g2", Role::K, {1, 4}, x), (std::vector<float>{1, -1, 10, 0}));
  // token: s = 10 -> round(0.1) = 0, 0, 1, round(0.5) = 0.
  EXPECT_EQ(fake_quant("int2:token:sym", Role::K, {2, 2}, x), (std::vector<float>{0, 0, 10, 0}));
}

TEST(IntAffine, TensorScaleFromPrefillThenSaturates) {
  auto cache = KvPolicy::parse("int3:tensor:sym").make_cache(0, Role::K, {1, 2});
  // s = 2/3: x/s = 1.5 -> 2 (tie to even), -3, 0.75 -> 1, 3.
  const float s = 2.0f / 3;
  const std::vector<float> prefill = {1, -2, 0.5f, 2};
  EXPECT_EQ(cache->append(prefill.data(), 2), 0);
  // Decode: 4/s = 6 saturates at 3; -0.1/s = -0.15 -> 0. The scale is not refitted.
  const std::vector<float> next = {4, -0.1f};
  EXPECT_EQ(cache->append(next.data(), 1), 2);
  const std::vector<float> want = {2 * s, -3 * s, 1 * s, 3 * s, 3 * s, 0};
  EXPECT_EQ(std::vector<float>(cache->rows(), cache->rows() + 6), want);
}

TEST(IntAffine, CompatPaperRefitsTensorPerCall) {
  KvPolicy p = KvPolicy::parse("int3:tensor:sym");
  p.set_compat_paper(true);
  auto cache = p.make_cache(0, Role::K, {1, 2});
  const std::vector<float> prefill = {1, -2, 0.5f, 2}, next = {4, -0.1f};
  cache->append(prefill.data(), 2);
  cache->append(next.data(), 1);
  // The decode token alone: s = 4/3: 4/s = 3, -0.075 -> 0.
  EXPECT_EQ(cache->rows()[4], 3 * (4.0f / 3));
  EXPECT_EQ(cache->rows()[5], 0.0f);
}

TEST(IntAffine, VectorSpanMatchesScalarDefinition) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> x(1000);
  for (auto& v : x) v = nd(rng);
  for (int i = 0; i < 100; ++i) x[i] = float(i / 4) * 0.5f;  // exact half-integers: ties
  for (int bits = 1; bits <= 8; ++bits)
    for (bool sym : {false, true}) {
      if (bits == 1 && sym) continue;
      const IntAffine q{bits, sym};
      for (AffineParams p : {q.fit(x.data(), 1000), AffineParams{0.5f, sym ? 0.0f : 3.0f, 0.5f}, AffineParams{0, 0}}) {
        std::vector<uint8_t> codes(x.size());
        std::vector<float> out(x.size());
        q.quantize_span(x.data(), int64_t(x.size()), p, codes.data());
        q.dequantize_span(codes.data(), int64_t(x.size()), p, out.data());
        for (size_t i = 0; i < x.size(); ++i) {
          ASSERT_EQ(codes[i], q.quantize(x[i], p)) << "bits " << bits << " sym " << sym << " i " << i;
          ASSERT_EQ(out[i], q.dequantize(codes[i], p));
        }
      }
    }
}

}  // namespace
}  // namespace kvaudit::kv
