// --bench ifeval in eval/sweep: accuracies against the baseline and the paired test on
// prompt-level strict (hand-counted).
#include <gtest/gtest.h>

#include <cmath>

#include "eval/ifeval/bench_metrics.h"
#include "eval/pipeline.h"

namespace kvaudit::eval::ifeval {
namespace {

Verdict v(std::vector<bool> strict, std::vector<bool> loose) {
  Verdict r{strict, loose, true, true};
  for (bool b : strict) r.all_strict = r.all_strict && b;
  for (bool b : loose) r.all_loose = r.all_loose && b;
  return r;
}

TEST(IfevalBench, AccuraciesDeltasAndMcNemar) {
  // Baseline follows prompts 0, 1 and 2 (strict); the scheme loses 1 and 2 and gains 3.
  const std::vector<Verdict> base = {v({1, 1}, {1, 1}), v({1}, {1}), v({1}, {1}), v({0}, {1})};
  const std::vector<Verdict> quant = {v({1, 1}, {1, 1}), v({0}, {1}), v({0}, {0}), v({1}, {1})};
  const IfevalMetrics m = ifeval_metrics(base, quant);
  EXPECT_DOUBLE_EQ(m.prompt_strict, 2.0 / 4);
  EXPECT_DOUBLE_EQ(m.prompt_loose, 3.0 / 4);
  EXPECT_DOUBLE_EQ(m.inst_strict, 3.0 / 5);
  EXPECT_DOUBLE_EQ(m.inst_loose, 4.0 / 5);
  EXPECT_DOUBLE_EQ(m.delta_prompt_strict, 2.0 / 4 - 3.0 / 4);
  EXPECT_DOUBLE_EQ(m.delta_inst_loose, 4.0 / 5 - 1.0);
  EXPECT_EQ(m.flips, 2);
  EXPECT_EQ(m.reverse_flips, 1);
  EXPECT_DOUBLE_EQ(m.mcnemar_p, 1.0);  // min(1, 2 * P(X <= 1 | n = 3)) = min(1, 2 * 4/8)
  EXPECT_TRUE(std::isnan(ifeval_metrics({}, {}).prompt_strict));
}

TEST(IfevalBench, MaxNewTokensDefaultsTo1024ForIfeval) {
  EvalArgs a;
  a.bench = {"advbench"};
  EXPECT_EQ(resolved_max_new_tokens(a), 256);
  a.bench = {"advbench,ifeval"};
  EXPECT_EQ(resolved_max_new_tokens(a), kMaxNewTokens);
  a.max_new_tokens = 64;
  EXPECT_EQ(resolved_max_new_tokens(a), 64);
}

TEST(IfevalBench, SummaryCountsFollowedInstructions) {
  EXPECT_EQ(verdict_summary(v({1, 0, 1}, {1, 1, 1})), "ifeval strict 2/3 loose 3/3");
}

}  // namespace
}  // namespace kvaudit::eval::ifeval
