// kv/span_simd.h against the scalar definitions it vectorises, bit for bit: lengths with and
// without a tail, and the values where the formulas differ most (±0, subnormals, the edges of the
// fp16 and bf16 ranges, infinities, NaN).
#include "kv/span_simd.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/bits.h"
#include "core/half.h"

namespace kvaudit::kv {
namespace {

std::vector<float> edge_values(size_t n, uint32_t seed) {
  const float specials[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 65504.0f, 65520.0f, -65536.0f, 6e-8f, 3.0e38f,
                            std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), bits_float(0x7f800001u), 1.00390625f,
                            -2.0f / 3.0f};
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = i % 5 == 0 ? specials[(i / 5) % std::size(specials)] : d(rng);
  return x;
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(float_bits(got[i]), float_bits(want[i])) << "at " << i;
}

TEST(SpanSimd, RoundingAndReciprocalsAreTheScalarLoops) {
  for (const size_t n : {size_t(0), size_t(7), size_t(8), size_t(75)}) {
    const std::vector<float> x = edge_values(n, uint32_t(n));
    std::vector<float> got(n), want(n);
    round_fp16_span(x.data(), int64_t(n), got.data());
    for (size_t i = 0; i < n; ++i) want[i] = round_fp16_f16c(x[i]);
    expect_same_bits(got, want);
    for (size_t i = 0; i < n; ++i) {
      if (!std::isnan(x[i])) {
        EXPECT_EQ(float_bits(got[i]), float_bits(round_fp16(x[i]))) << "at " << i;
      }
    }
    round_bf16_span(x.data(), int64_t(n), got.data());
    for (size_t i = 0; i < n; ++i) want[i] = round_bf16(x[i]);
    expect_same_bits(got, want);
    reciprocal_span(x.data(), int64_t(n), got.data());
    for (size_t i = 0; i < n; ++i) want[i] = 1.0f / x[i];
    expect_same_bits(got, want);
  }
}

TEST(SpanSimd, MinMaxRowsIsStdMinMaxInRowOrder) {
  for (const int64_t rows : {1, 2, 9, 17}) {
    for (const int wc : {5, 8, 21}) {
      const std::vector<float> x = edge_values(size_t(rows * wc), uint32_t(rows * 100 + wc));
      std::vector<float> lo(x.begin(), x.begin() + wc), hi = lo, want_lo = lo, want_hi = lo;
      minmax_rows(x.data(), rows, wc, lo.data(), hi.data());
      for (int64_t r = 1; r < rows; ++r)
        for (int c = 0; c < wc; ++c) {
          want_lo[size_t(c)] = std::min(want_lo[size_t(c)], x[size_t(r * wc + c)]);
          want_hi[size_t(c)] = std::max(want_hi[size_t(c)], x[size_t(r * wc + c)]);
        }
      expect_same_bits(lo, want_lo);
      expect_same_bits(hi, want_hi);
    }
  }
}

}  // namespace
}  // namespace kvaudit::kv
