// serve/sampler.h against a plain reference: the nucleus and its probabilities computed by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "serve/sampler.h"

namespace kvaudit::serve {
namespace {

TEST(Sampler, TemperatureZeroIsArgmaxFirstOnTies) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f};
  std::mt19937_64 rng(1);
  EXPECT_EQ(sample_token(logits.data(), 4, {0.0, 1.0}, rng), 1);
}

TEST(Sampler, SmallTopPKeepsOnlyTheMostProbable) {
  const std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.5f};
  std::mt19937_64 rng(7);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(logits.data(), 4, {1.0, 1e-6}, rng), 1);
}

TEST(Sampler, SeededDrawsRepeat) {
  const std::vector<float> logits = {0.1f, 0.2f, 0.3f, 0.4f, 0.0f};
  std::mt19937_64 a(42), b(42);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits.data(), 5, {0.9, 0.95}, a), sample_token(logits.data(), 5, {0.9, 0.95}, b));
}

// Frequencies of many draws match the reference distribution: softmax(logits / T) restricted to the
// nucleus. logits ln(4), ln(3), ln(2), ln(1) at T = 1 give p = .4 .3 .2 .1; top_p 0.75 keeps the
// first three (.4 + .3 < .75 <= .9), renormalized to 4/9, 3/9, 2/9.
TEST(Sampler, FrequenciesFollowTheNucleus) {
  const std::vector<float> logits = {float(std::log(4.0)), float(std::log(3.0)), float(std::log(2.0)), 0.0f};
  std::mt19937_64 rng(3);
  constexpr int kDraws = 90000;
  std::map<int, int> n;
  for (int i = 0; i < kDraws; ++i) ++n[sample_token(logits.data(), 4, {1.0, 0.75}, rng)];
  // 5 standard deviations of a binomial proportion at this many draws.
  const double tol = 5 * std::sqrt(0.25 / kDraws);
  EXPECT_NEAR(n[0] / double(kDraws), 4.0 / 9, tol);
  EXPECT_NEAR(n[1] / double(kDraws), 3.0 / 9, tol);
  EXPECT_NEAR(n[2] / double(kDraws), 2.0 / 9, tol);
  EXPECT_EQ(n[3], 0);
}

// Temperature 0.5 squares the odds: p ∝ 4², 3², 2², 1² = 16, 9, 4, 1 (of 30).
TEST(Sampler, TemperatureSharpens) {
  const std::vector<float> logits = {float(std::log(4.0)), float(std::log(3.0)), float(std::log(2.0)), 0.0f};
  std::mt19937_64 rng(5);
  constexpr int kDraws = 60000;
  std::map<int, int> n;
  for (int i = 0; i < kDraws; ++i) ++n[sample_token(logits.data(), 4, {0.5, 1.0}, rng)];
  const double tol = 5 * std::sqrt(0.25 / kDraws);
  EXPECT_NEAR(n[0] / double(kDraws), 16.0 / 30, tol);
  EXPECT_NEAR(n[3] / double(kDraws), 1.0 / 30, tol);
}

}  // namespace
}  // namespace kvaudit::serve
