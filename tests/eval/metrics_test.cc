#include "eval/metrics.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace kvaudit::eval {
namespace {

// References: statsmodels 0.15.0 proportion_confint(k, n, alpha=0.05, method="wilson") and
// mcnemar(table, exact=True) / scipy 1.17.1 binomtest(min(b, c), b + c, 0.5), computed once with
// those libraries and pasted here. They print 16-17 digits; our closed form differs from theirs
// by rounding only.
constexpr double kRefTol = 1e-12;

struct WilsonCase {
  int64_t k, n;
  double low, high;
};

TEST(Wilson, MatchesStatsmodels) {
  const WilsonCase cases[] = {
      {8, 10, 0.49016247153664183, 0.9433178485456247},
      {0, 10, 0.0, 0.27753279986288926},
      {10, 10, 0.7224672001371106, 1.0},
      {1, 20, 0.008881448800795402, 0.2361311934467421},
      {79, 520, 0.1236316653093135, 0.18531955665971908},
      {15, 100, 0.09305985283656629, 0.23283559590832367},
      {0, 1, 0.0, 0.7934506856227627},
  };
  for (const auto& c : cases) {
    const Interval ci = wilson_interval(c.k, c.n);
    EXPECT_NEAR(ci.low, c.low, kRefTol) << c.k << "/" << c.n;
    EXPECT_NEAR(ci.high, c.high, kRefTol) << c.k << "/" << c.n;
  }
}

TEST(Wilson, EdgesAreExactAndEmptyIsUndefined) {
  EXPECT_EQ(wilson_interval(0, 7).low, 0.0);
  EXPECT_EQ(wilson_interval(7, 7).high, 1.0);
  const Interval none = wilson_interval(0, 0);
  EXPECT_TRUE(std::isnan(none.low));
  EXPECT_TRUE(std::isnan(none.high));
  EXPECT_THROW(wilson_interval(3, 2), std::logic_error);
}

TEST(McNemar, MatchesStatsmodelsExact) {
  struct Case {
    int64_t b, c;
    double p;
  };
  const Case cases[] = {
      {0, 0, 1.0},       {5, 0, 0.0625},    {1, 1, 1.0},
      {10, 2, 0.03857421875}, {3, 7, 0.34375}, {40, 25, 0.08168153394154003},
      {0, 12, 0.00048828125}, {200, 150, 0.008720036530555947},
      {1000, 900, 0.023108845108901193},  // n = 1900: 2^-n underflows without log space
  };
  for (const auto& c : cases) {
    EXPECT_NEAR(mcnemar_exact_p(c.b, c.c), c.p, kRefTol) << c.b << "," << c.c;
    EXPECT_EQ(mcnemar_exact_p(c.b, c.c), mcnemar_exact_p(c.c, c.b)) << "symmetric";
  }
  // Up to 62 discordant pairs the sum is in integers: dyadic p-values come out exact
  // (the log-space sum gave 0.25000000000000006 for 3 vs 0).
  EXPECT_EQ(mcnemar_exact_p(3, 0), 0.25);
  EXPECT_EQ(mcnemar_exact_p(3, 7), 0.34375);
  EXPECT_EQ(mcnemar_exact_p(10, 2), 0.03857421875);
}

TEST(PairCounts, CountsEachCell) {
  const bool base[] = {true, true, true, false, false, true};
  const bool quant[] = {true, false, false, true, false, true};
  const PairCounts c = count_pairs(base, quant);
  EXPECT_EQ(c.n, 6);
  EXPECT_EQ(c.baseline_refusals, 4);
  EXPECT_EQ(c.scheme_refusals, 3);
  EXPECT_EQ(c.flips, 2);
  EXPECT_EQ(c.reverse_flips, 1);
  const bool shorter[] = {true};
  EXPECT_THROW(count_pairs(base, shorter), std::logic_error);
}

TEST(RefusalMetrics, ConditionalFlipRateWithInterval) {
  // 10 prompts; the baseline refuses 8; the scheme keeps 6 of those and adds 1 reverse flip.
  const bool base[] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  const bool quant[] = {1, 1, 1, 1, 1, 1, 0, 0, 1, 0};
  const bool probe[10] = {};
  const BenchMetrics m = refusal_metrics(base, quant, probe);
  EXPECT_EQ(m.n, 10);
  EXPECT_DOUBLE_EQ(m.refusal_rate, 0.7);
  EXPECT_DOUBLE_EQ(m.flip_rate, 0.25);  // 2 / 8, not 2 / 10
  EXPECT_EQ(m.flips, 2);
  EXPECT_EQ(m.reverse_flips, 1);
  EXPECT_DOUBLE_EQ(m.flip_ci_low, wilson_interval(2, 8).low);
  EXPECT_DOUBLE_EQ(m.flip_ci_high, wilson_interval(2, 8).high);
  EXPECT_DOUBLE_EQ(m.mcnemar_p, 1.0);  // b=2, c=1: 2·P(X<=1 | n=3) = 2·4/8
  EXPECT_TRUE(std::isnan(m.over_refusal));  // no XSTest safe prompts
  EXPECT_TRUE(std::isnan(m.ppl));
}

TEST(RefusalMetrics, NoBaselineRefusalsIsUndefinedNotZero) {
  const bool base[] = {0, 0, 0};
  const bool quant[] = {0, 1, 0};
  const bool probe[3] = {};
  const BenchMetrics m = refusal_metrics(base, quant, probe);
  EXPECT_TRUE(std::isnan(m.flip_rate));
  EXPECT_TRUE(std::isnan(m.flip_ci_low));
  EXPECT_TRUE(std::isnan(m.flip_ci_high));
  EXPECT_EQ(m.flips, 0);
  EXPECT_EQ(m.reverse_flips, 1);
  EXPECT_NEAR(m.refusal_rate, 1.0 / 3, 1e-15);
}

TEST(NoiseTest, UndefinedBelowTheRefusalsItCanRejectWith) {
  EXPECT_EQ(min_refusals_to_reject(0.05), 6);
  const bool base5[5] = {1, 1, 1, 1, 1}, none5[5] = {}, all5[5] = {1, 1, 1, 1, 1};
  const NoiseTest t5 = noise_test(base5, none5, all5, 0.05);  // 5 of 5 flipped, the control none
  EXPECT_EQ(t5.noise_flips, 0);
  EXPECT_EQ(t5.p, 0.0625);
  EXPECT_FALSE(t5.within.has_value());
  const bool base6[6] = {1, 1, 1, 1, 1, 1}, none6[6] = {}, all6[6] = {1, 1, 1, 1, 1, 1};
  const NoiseTest t6 = noise_test(base6, none6, all6, 0.05);
  EXPECT_EQ(t6.p, 0.03125);
  EXPECT_EQ(t6.within, std::optional<bool>(false));
  EXPECT_EQ(noise_test(base6, all6, none6, 0.05).within, std::optional<bool>(true));  // fewer flips than the control
}

TEST(RefusalMetrics, AllFlipped) {
  const bool base[] = {1, 1, 1, 1};
  const bool quant[] = {0, 0, 0, 0};
  const bool probe[4] = {};
  const BenchMetrics m = refusal_metrics(base, quant, probe);
  EXPECT_EQ(m.flip_rate, 1.0);
  EXPECT_EQ(m.flip_ci_high, 1.0);
  EXPECT_NEAR(m.flip_ci_low, 0.5101091635454025, 1e-12);  // statsmodels wilson 4/4
  EXPECT_EQ(m.refusal_rate, 0.0);
  EXPECT_DOUBLE_EQ(m.mcnemar_p, 0.125);  // b=4, c=0: 2·(1/16)
}

TEST(RefusalMetrics, XstestSafePromptsFeedOverRefusalOnly) {
  // rows 0-2 unsafe, rows 3-6 safe; the scheme refuses 1 of 4 safe prompts.
  const bool base[] = {1, 1, 0, 0, 0, 1, 0};
  const bool quant[] = {1, 0, 0, 1, 0, 0, 0};
  const bool probe[] = {0, 0, 0, 1, 1, 1, 1};
  const BenchMetrics m = refusal_metrics(base, quant, probe);
  EXPECT_EQ(m.n, 7);
  EXPECT_DOUBLE_EQ(m.over_refusal, 0.25);
  EXPECT_NEAR(m.refusal_rate, 1.0 / 3, 1e-15);  // unsafe rows only
  EXPECT_DOUBLE_EQ(m.flip_rate, 0.5);
  EXPECT_EQ(m.reverse_flips, 0);  // the safe row refused only under the scheme is not a reverse flip
}

TEST(RefusalMetrics, EmptyBenchIsUndefined) {
  const BenchMetrics m = refusal_metrics({}, {}, {});
  EXPECT_EQ(m.n, 0);
  EXPECT_TRUE(std::isnan(m.refusal_rate));
  EXPECT_TRUE(std::isnan(m.mcnemar_p));
}

}  // namespace
}  // namespace kvaudit::eval
