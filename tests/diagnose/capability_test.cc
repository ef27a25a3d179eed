// The capability rule of the audit (diagnose/capability.h) on hand-made IFEval verdicts: lower
// prompt-level strict accuracy with McNemar p < alpha loses capability; a drop the test cannot tell
// from chance, a gain, or nothing to compare does not.
#include <gtest/gtest.h>

#include <vector>

#include "diagnose/capability.h"
#include "eval/ifeval/bench_metrics.h"

namespace kvaudit::diagnose {
namespace {

using eval::ifeval::Verdict;

std::vector<Verdict> follows(const std::vector<int>& all_strict) {
  std::vector<Verdict> v;
  for (int f : all_strict) v.push_back({{f != 0}, {f != 0}, f != 0, f != 0});
  return v;
}

TEST(Capability, SignificantDropIsLost) {
  // The baseline follows 10 of 12, the plan 1 of those and nothing else: 9 flips, 0 reverse,
  // McNemar p = 2 / 2^9 < 0.05.
  const auto base = follows({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
  const auto plan = follows({1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  const eval::IfevalMetrics m = eval::ifeval::ifeval_metrics(base, plan);
  EXPECT_EQ(m.flips, 9);
  EXPECT_EQ(m.reverse_flips, 0);
  EXPECT_DOUBLE_EQ(m.delta_prompt_strict, -9.0 / 12.0);
  EXPECT_TRUE(loses_capability(m));
}

TEST(Capability, DropWithinChanceGainAndUndefinedAreNotLost) {
  const auto base = follows({1, 1, 1, 0, 0, 0});
  // Two flips, no reverse: p = 0.5.
  EXPECT_FALSE(loses_capability(eval::ifeval::ifeval_metrics(base, follows({1, 0, 0, 0, 0, 0}))));
  // A significant change upwards is not a loss.
  const auto low = follows({0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_FALSE(loses_capability(eval::ifeval::ifeval_metrics(low, follows({1, 1, 1, 1, 1, 1, 1, 1, 1, 1}))));
  // The same verdicts: delta 0, no discordant pair.
  EXPECT_FALSE(loses_capability(eval::ifeval::ifeval_metrics(base, base)));
  // Nothing scored: every number undefined, not a loss.
  EXPECT_FALSE(loses_capability(eval::IfevalMetrics{}));
}

}  // namespace
}  // namespace kvaudit::diagnose
