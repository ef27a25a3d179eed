// minmax_span keeps four accumulators per lane and falls back to one where that could matter
// (int_affine.cc): its lo/hi must be the one-accumulator lane definition's bit for bit, the sign of
// a zero and the NaN positions included, since asym zero points take their sign from lo.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kv/schemes/int_affine.h"

namespace kvaudit::kv {
namespace {

// The definition, written out: lane k folds x[k], x[k+8], ... with lo = v < lo ? v : lo and
// hi = v > hi ? v : hi; lanes combined in order with std::min/std::max, then the scalar tail.
void lane_minmax(const std::vector<float>& x, float* lo_out, float* hi_out) {
  const size_t n = x.size();
  float lo = n ? x[0] : 0.0f, hi = lo;
  size_t i = 0;
  if (n >= 8) {
    float l[8], h[8];
    for (int k = 0; k < 8; ++k) l[k] = h[k] = x[k];
    for (i = 8; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) {
        const float v = x[i + k];
        l[k] = v < l[k] ? v : l[k];
        h[k] = v > h[k] ? v : h[k];
      }
    lo = l[0], hi = h[0];
    for (int k = 1; k < 8; ++k) lo = std::min(lo, l[k]), hi = std::max(hi, h[k]);
  }
  for (; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  *lo_out = lo;
  *hi_out = hi;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

TEST(MinmaxSpan, EqualsLaneDefinitionWithZerosAndNaN) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 9);
  int rows = 0;
  for (size_t n : {1, 7, 8, 31, 63, 64, 65, 96, 100, 1024, 1027}) {
    for (int t = 0; t < 60; ++t) {
      std::vector<float> x(n);
      for (float& v : x) {
        const int p = pick(rng);
        // t % 3: 0 all >= 0 (lo a zero), 1 mixed signs (zeros inside, the fast result kept), 2 all <= 0.
        const float r = nd(rng);
        v = p == 0 ? 0.0f : p == 1 ? -0.0f : t % 3 == 1 ? r : std::fabs(r) * (t % 3 == 0 ? 1.0f : -1.0f);
      }
      if (t % 3 == 2) std::transform(x.begin(), x.end(), x.begin(), [](float v) { return v > 0 ? 0.0f : v; });
      if (t % 5 == 1) x[size_t(t) % n] = NAN;        // NaN in the first accumulators or later
      if (t % 7 == 3) x[(size_t(t) * 13) % n] = NAN;
      if (t % 11 == 4) std::fill(x.begin(), x.end(), (t % 2) ? 0.0f : -0.0f);
      float lo, hi, want_lo, want_hi;
      minmax_span(x.data(), int64_t(n), &lo, &hi);
      lane_minmax(x, &want_lo, &want_hi);
      EXPECT_TRUE(same_bits(lo, want_lo)) << "n " << n << " t " << t << " lo " << lo << " want " << want_lo;
      EXPECT_TRUE(same_bits(hi, want_hi)) << "n " << n << " t " << t << " hi " << hi << " want " << want_hi;
      ++rows;
    }
  }
  EXPECT_EQ(rows, 11 * 60);
}

}  // namespace
}  // namespace kvaudit::kv
