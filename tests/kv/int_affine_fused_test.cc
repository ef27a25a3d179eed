// The fused intB paths of the simulated cache (schemes/int_affine.h: minmax_sets, fit_ranges,
// fake_quantize_span/sets/columns) against the scalar definitions they replace, bit for bit
// (sign of zero and NaN included), on inputs built to hit every special case: exact ties x = (k+1/2)·s,
// fp16-rounded values, saturating values, zeros of both signs, NaN, infinities, all-zero sets and
// tiny scales whose reciprocal overflows.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/half.h"
#include "kv/schemes/int_affine.h"

namespace kvaudit::kv {
namespace {

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

// [n] values: normals at several scales, then special values at fixed positions.
std::vector<float> adversarial(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 9);
  std::vector<float> x(n);
  for (auto& v : x) {
    v = nd(rng);
    switch (pick(rng)) {
      case 0: v = round_fp16(v); break;                   // the residual's storage
      case 1: v = float(int(v * 8)) * 0.0625f; break;     // exact ties for power-of-two scales
      case 2: v *= 1e4f; break;                           // saturates under a small scale
      case 3: v = std::signbit(v) ? -0.0f : 0.0f; break;  // zeros of both signs
      default: break;
    }
  }
  return x;
}

constexpr IntAffine kFormats[] = {{1, false}, {2, false}, {2, true}, {3, true}, {4, false},
                                  {4, true},  {5, false}, {7, true}, {8, false}, {8, true}};

TEST(IntAffineFused, FitRangesEqualsFitRange) {
  std::vector<float> lo = adversarial(203, 1), hi = adversarial(203, 2);
  for (size_t i = 0; i < lo.size(); ++i)
    if (lo[i] > hi[i]) std::swap(lo[i], hi[i]);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::pair<float, float>> special = {{0.0f, 0.0f},  {-0.0f, 0.0f}, {-0.0f, -0.0f}, {-inf, inf},
                                                        {-3e38f, 3e38f}, {nan, 1.0f},  {-1.0f, nan},   {1e-40f, 2e-40f},
                                                        {2.0f, 5.0f},  {-5.0f, -2.0f}};
  for (size_t i = 0; i < special.size(); ++i) lo[i * 3] = special[i].first, hi[i * 3] = special[i].second;
  for (const IntAffine& a : kFormats) {
    const size_t n = lo.size();
    std::vector<float> scale(n), zero(n), qscale(n);
    a.fit_ranges(lo.data(), hi.data(), int64_t(n), scale.data(), zero.data(), qscale.data());
    for (size_t i = 0; i < n; ++i) {
      const AffineParams p = a.fit_range(lo[i], hi[i]);
      ASSERT_EQ(bits_of(scale[i]), bits_of(p.scale)) << a.bits << (a.sym ? " sym i " : " asym i ") << i;
      ASSERT_EQ(bits_of(zero[i]), bits_of(p.zero)) << a.bits << (a.sym ? " sym i " : " asym i ") << i;
      ASSERT_EQ(bits_of(qscale[i]), bits_of(p.qscale)) << a.bits << (a.sym ? " sym i " : " asym i ") << i;
    }
  }
}

TEST(IntAffineFused, MinmaxSetsEqualsMinmaxSpan) {
  std::vector<float> x = adversarial(8 * 128 + 40, 3);
  x[5] = std::numeric_limits<float>::quiet_NaN();  // min/max comparison order decides NaN and ±0
  x[300] = -0.0f, x[301] = 0.0f;
  for (int64_t len : {8, 16, 24, 32, 128, 5}) {
    const int64_t n_sets = int64_t(x.size()) / len;
    std::vector<float> lo(n_sets), hi(n_sets);
    minmax_sets(x.data(), n_sets, len, lo.data(), hi.data());
    for (int64_t s = 0; s < n_sets; ++s) {
      float l, h;
      minmax_span(x.data() + s * len, len, &l, &h);
      ASSERT_EQ(bits_of(lo[s]), bits_of(l)) << "len " << len << " set " << s;
      ASSERT_EQ(bits_of(hi[s]), bits_of(h)) << "len " << len << " set " << s;
    }
  }
}

// Parameter sets for one span: fitted, power-of-two scales (exact ties), tiny (1/s overflows), zero.
std::vector<AffineParams> param_cases(const IntAffine& a, const std::vector<float>& x) {
  std::vector<AffineParams> ps = {a.fit(x.data(), int64_t(x.size())), a.fit_range(-2.0f, 2.0f),
                                  a.fit_range(-0.5f, 1.0f), AffineParams{0.125f, a.sym ? 0.0f : 1.0f, 0.125f},
                                  AffineParams{1e-39f, 0.0f, 1e-39f}, AffineParams{}};
  return ps;
}

TEST(IntAffineFused, FakeQuantizeSpanEqualsQuantizeThenDequantize) {
  const std::vector<float> x = adversarial(1000, 4);  // not a multiple of 8: the scalar tail too
  std::vector<float> xs = x;
  xs[17] = std::numeric_limits<float>::quiet_NaN();
  xs[18] = std::numeric_limits<float>::infinity();
  xs[19] = -std::numeric_limits<float>::infinity();
  for (const IntAffine& a : kFormats)
    for (const AffineParams& p : param_cases(a, x)) {
      std::vector<uint8_t> codes(xs.size());
      std::vector<float> want(xs.size()), got(xs.size());
      a.quantize_span(xs.data(), int64_t(xs.size()), p, codes.data());
      a.dequantize_span(codes.data(), int64_t(xs.size()), p, want.data());
      a.fake_quantize_span(xs.data(), int64_t(xs.size()), p, got.data());
      for (size_t i = 0; i < xs.size(); ++i)
        ASSERT_EQ(bits_of(got[i]), bits_of(want[i])) << a.bits << (a.sym ? " sym" : " asym") << " s " << p.qscale
                                                     << " i " << i << " x " << xs[i];
    }
}

// Values where the multiply by fl(1/s) and the division round to different integers (found by
// search next to x = (k + 1/2)·s): the fused loops must defer to the division for them.
TEST(IntAffineFused, FakeQuantizeSpanWhereReciprocalDiffers) {
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> us(0.01f, 10.0f);
  int hard = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const float s = us(rng), r = 1.0f / s;
    for (const IntAffine& a : kFormats) {
      const float z = a.sym ? 0.0f : float(a.qmax() / 2);
      std::vector<float> x;
      for (int k = a.qmin() - 1; k <= a.qmax(); ++k) {
        float v = (float(k) - z + 0.5f) * s;
        for (int step = 0; step < 6; ++step, v = std::nextafter(v, 1e9f)) {
          const float te = a.sym ? v / s : v / s + z, ta = a.sym ? v * r : v * r + z;
          if (std::nearbyint(te) != std::nearbyint(ta)) ++hard;
          x.push_back(v);
        }
      }
      const AffineParams p{s, z, s};
      std::vector<uint8_t> codes(x.size());
      std::vector<float> want(x.size()), got(x.size());
      a.quantize_span(x.data(), int64_t(x.size()), p, codes.data());
      a.dequantize_span(codes.data(), int64_t(x.size()), p, want.data());
      a.fake_quantize_span(x.data(), int64_t(x.size()), p, got.data());
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_EQ(bits_of(got[i]), bits_of(want[i])) << a.bits << " s " << s << " x " << x[i];
    }
  }
  EXPECT_GT(hard, 100);  // the search did find values where the reciprocal alone would be wrong
}

TEST(IntAffineFused, FakeQuantizeSetsEqualsPerSetSpans) {
  const std::vector<float> x = adversarial(32 * 40, 5);
  for (const IntAffine& a : kFormats)
    for (int64_t len : {32, 24, 128}) {
      const int64_t n_sets = int64_t(x.size()) / len;
      std::vector<float> lo(n_sets), hi(n_sets), scale(n_sets), zero(n_sets), qscale(n_sets);
      minmax_sets(x.data(), n_sets, len, lo.data(), hi.data());
      a.fit_ranges(lo.data(), hi.data(), n_sets, scale.data(), zero.data(), qscale.data());
      qscale[1] = scale[1] = 0;  // an all-zero set (sym: s = 0)
      std::vector<float> got(size_t(n_sets * len));
      a.fake_quantize_sets(x.data(), n_sets, len, scale.data(), zero.data(), qscale.data(), got.data());
      for (int64_t s = 0; s < n_sets; ++s) {
        const AffineParams p{scale[s], zero[s], qscale[s]};
        std::vector<uint8_t> codes(len);
        std::vector<float> want(len);
        a.quantize_span(x.data() + s * len, len, p, codes.data());
        a.dequantize_span(codes.data(), len, p, want.data());
        for (int64_t i = 0; i < len; ++i)
          ASSERT_EQ(bits_of(got[s * len + i]), bits_of(want[i])) << a.bits << " len " << len << " set " << s;
      }
    }
}

TEST(IntAffineFused, FakeQuantizeColumnsEqualsQuantizeThenDequantizeColumns) {
  constexpr int64_t kRows = 32, kWidth = 203;  // a KIVI block; width not a multiple of 8
  const std::vector<float> raw = adversarial(size_t(kRows * kWidth), 6);
  std::vector<float> rounded(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) rounded[i] = round_fp16(raw[i]);
  for (const IntAffine& a : kFormats) {
    std::vector<float> lo(rounded.begin(), rounded.begin() + kWidth), hi = lo;
    for (int64_t r = 1; r < kRows; ++r)
      for (int64_t c = 0; c < kWidth; ++c)
        lo[c] = std::min(lo[c], rounded[r * kWidth + c]), hi[c] = std::max(hi[c], rounded[r * kWidth + c]);
    std::vector<float> scale(kWidth), zero(kWidth), qscale(kWidth), recip(kWidth);
    a.fit_ranges(lo.data(), hi.data(), kWidth, scale.data(), zero.data(), qscale.data());
    qscale[3] = scale[3] = 0;                    // a zero scale stores code_offset()
    qscale[4] = scale[4] = 0.125f, zero[4] = 0;  // power of two: ties
    qscale[5] = scale[5] = 1e-39f;               // 1/s overflows
    for (int64_t c = 0; c < kWidth; ++c) recip[c] = 1.0f / qscale[c];
    for (int64_t r = 0; r < kRows; ++r) {
      std::vector<uint8_t> codes(kWidth);
      std::vector<float> want(kWidth), got(kWidth), got16(kWidth);
      const float* xr = &rounded[size_t(r * kWidth)];
      a.quantize_columns(xr, kWidth, qscale.data(), zero.data(), codes.data());
      a.dequantize_columns(codes.data(), kWidth, scale.data(), zero.data(), want.data());
      a.fake_quantize_columns(xr, kWidth, qscale.data(), recip.data(), scale.data(), zero.data(), got.data());
      // fp16_input: the raw row, rounded inside, gives the same as the pre-rounded row.
      a.fake_quantize_columns(&raw[size_t(r * kWidth)], kWidth, qscale.data(), recip.data(), scale.data(), zero.data(),
                              got16.data(), /*fp16_input=*/true);
      for (int64_t c = 0; c < kWidth; ++c) {
        ASSERT_EQ(bits_of(got[c]), bits_of(want[c])) << a.bits << (a.sym ? " sym" : " asym") << " row " << r << " c " << c;
        ASSERT_EQ(bits_of(got16[c]), bits_of(want[c])) << a.bits << " fp16 row " << r << " c " << c;
      }
    }
  }
}

}  // namespace
}  // namespace kvaudit::kv
