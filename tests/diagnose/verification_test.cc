// Recovery and its interval, the noise-floor test, real-byte overhead of mixed plans, deploy
// settings, the vulnerability ratio, AUROC and Spearman, on hand-computed examples.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "diagnose/deploy_settings.h"
#include "diagnose/geometry.h"
#include "diagnose/screen.h"
#include "diagnose/verification.h"

namespace kvaudit::diagnose {
namespace {

TEST(Recovery, PointAndInterval) {
  // 10 prompts: baseline refuses 8, target 2, plan 7 -> (7-2)/(8-2) = 5/6.
  const bool base[10] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  const bool tgt[10] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  const bool plan[10] = {1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
  const Recovery r = recovery(base, tgt, plan);
  EXPECT_DOUBLE_EQ(r.value, 5.0 / 6.0);
  EXPECT_LE(r.ci_low, r.value);
  EXPECT_GE(r.ci_high, r.value);
  EXPECT_LE(r.ci_high, 1.0);  // the plan never refuses more than the baseline here
  // A plan equal to the baseline recovers exactly 1 in every resample.
  const Recovery full = recovery(base, tgt, base);
  EXPECT_DOUBLE_EQ(full.value, 1.0);
  EXPECT_DOUBLE_EQ(full.ci_low, 1.0);
  EXPECT_DOUBLE_EQ(full.ci_high, 1.0);
  // Target == baseline: nothing to recover, undefined (null), never 0.
  EXPECT_TRUE(std::isnan(recovery(base, base, plan).value));
  EXPECT_TRUE(std::isnan(recovery(base, base, plan).ci_low));
}

TEST(NoiseFloor, PairedExactTest) {
  // Baseline refuses all 8; scheme flips prompts 0-5, noise flips prompt 7: discordant 6 vs 1,
  // McNemar exact p = 2·P(X <= 1 | n=7) = 2·8/128 = 0.125.
  const bool base[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  const bool scheme[8] = {0, 0, 0, 0, 0, 0, 1, 1};
  const bool noise[8] = {1, 1, 1, 1, 1, 1, 1, 0};
  EXPECT_NEAR(flip_difference_p(base, scheme, noise), 0.125, 1e-12);
  EXPECT_TRUE(flips_within_noise(base, scheme, noise));   // not significant at 0.05
  EXPECT_TRUE(flips_within_noise(base, noise, scheme));   // fewer flips than the control
  bool many[8] = {};
  bool none_flip[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_NEAR(flip_difference_p(base, many, none_flip), 2.0 / 256, 1e-12);
  EXPECT_FALSE(flips_within_noise(base, many, none_flip));
}

TEST(NoiseFloor, FewestRefusalsTheTestCanRejectWith) {
  // 5 refusals all flipped against none: p = 2 / 32 = 0.0625 >= 0.05; 6: 2 / 64 < 0.05.
  EXPECT_EQ(min_refusals_for_noise_test(), 6);
}

TEST(Memory, RealBytesOfAMixedPlan) {
  // 2 layers, 1 KV head x 32. int4:token:asym: 16 code bytes + fp32 s and z = 24 bytes per token per
  // layer-role; fp16: 64. Target 4·24 = 96; plan (layer 0 in 16 bits) 2·64 + 2·24 = 176.
  const kv::CacheGeometry g{1, 32};
  const double target = policy_bytes_per_token(kv::KvPolicy::parse("int4:token:asym"), 2, g);
  const double plan = policy_bytes_per_token(kv::KvPolicy::parse("int4:token:asym;layers[0]=fp16"), 2, g);
  EXPECT_DOUBLE_EQ(target, 96.0);
  EXPECT_DOUBLE_EQ(plan, 176.0);
  EXPECT_DOUBLE_EQ(memory_overhead(plan, target), 176.0 / 96.0 - 1.0);
}

TEST(DeploySettings, ServersWhereExpressible) {
  const auto e5 = deploy_settings(kv::KvPolicy::parse("fp8e5m2"), 4);
  EXPECT_EQ(e5.vllm, "--kv-cache-dtype fp8_e5m2");
  EXPECT_FALSE(e5.llama_cpp);
  const auto q8 = deploy_settings(kv::KvPolicy::parse("k=q8_0;v=q4_0"), 4);
  EXPECT_EQ(q8.llama_cpp, "-ctk q8_0 -ctv q4_0 -fa on");
  EXPECT_FALSE(q8.vllm);
  const auto mixed = deploy_settings(kv::KvPolicy::parse("q4_0;layers[1]=fp16"), 4);
  EXPECT_FALSE(mixed.vllm);
  EXPECT_FALSE(mixed.llama_cpp);
  EXPECT_NE(mixed.why_not.find("different KV precisions"), std::string::npos);
  EXPECT_EQ(deploy_settings(kv::KvPolicy(), 2).vllm, "--kv-cache-dtype auto");
}

TEST(Geometry, VulnerabilityRatioOnAConstructedExample) {
  // S = span(e0); h = (1, 1, 0, 0); h_q - h = (0.1, 0, 0, 0):
  // (|P_S d| / |P_S h|) / (|d| / |h|) = (0.1 / 1) / (0.1 / sqrt 2) = sqrt 2.
  const std::vector<std::vector<double>> S = {{1, 0, 0, 0}};
  EXPECT_NEAR(vulnerability_ratio(S.data(), 1, {1, 1, 0, 0}, {1.1f, 1, 0, 0}), std::sqrt(2.0), 1e-6);
  // Noise orthogonal to S: ratio 0; no change at all: undefined.
  EXPECT_DOUBLE_EQ(vulnerability_ratio(S.data(), 1, {1, 1, 0, 0}, {1, 1, 0.5f, 0}), 0.0);
  EXPECT_TRUE(std::isnan(vulnerability_ratio(S.data(), 1, {1, 1, 0, 0}, {1, 1, 0, 0})));
}

TEST(Geometry, PrincipalDirectionsAndRandomControlNearOne) {
  // Differences along e2 and e5 only: the top-2 basis spans exactly {e2, e5}.
  Residuals diffs = {{0, 0, 3, 0, 0, 0}, {0, 0, 0, 0, 0, 1}, {0, 0, -2, 0, 0, 0.5f}};
  const auto B = principal_directions(diffs, 2);
  ASSERT_EQ(B.size(), 2u);
  for (const auto& b : B) EXPECT_NEAR(b[2] * b[2] + b[5] * b[5], 1.0, 1e-9);
  // Random h and noise: a random subspace's ratio has median ≈ 1.
  const int d = 512;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0, 1);
  Residuals harmful, harmless, q;
  for (int i = 0; i < 64; ++i) {
    std::vector<float> h(d), l(d), hq(d);
    for (int j = 0; j < d; ++j) h[size_t(j)] = nd(rng), l[size_t(j)] = nd(rng), hq[size_t(j)] = h[size_t(j)] + 0.1f * nd(rng);
    harmful.push_back(h), harmless.push_back(l), q.push_back(hq);
  }
  const LayerGeometry g = layer_geometry(0, harmful, harmless, q, 32, 11);
  EXPECT_GT(g.random_ratio, 0.8);
  EXPECT_LT(g.random_ratio, 1.25);
}

TEST(Screen, RefusalScoreAurocSpearman) {
  // logits (0, ln 3, 0): p = (1/5, 3/5, 1/5); openings {1}: log(3/5) - log(2/5) = log 1.5.
  const float logits[3] = {0.0f, float(std::log(3.0)), 0.0f};
  EXPECT_NEAR(refusal_score(logits, 3, {1}), std::log(1.5), 1e-6);
  const double score[4] = {0.9, 0.8, 0.3, 0.8};
  const bool label[4] = {true, true, false, false};
  EXPECT_DOUBLE_EQ(auroc(score, label), (1 + 1 + 1 + 0.5) / 4);  // a tie counts 1/2
  const bool one_class[2] = {true, true};
  EXPECT_TRUE(std::isnan(auroc(std::span<const double>(score, 2), one_class)));
  const double x[4] = {1, 2, 3, 4}, y[4] = {10, 20, 20, 40};
  // ranks y: 1, 2.5, 2.5, 4 -> Pearson of ranks = 0.9486832980505138.
  EXPECT_NEAR(spearman(x, y), 0.9486832980505138, 1e-12);
  const double c[4] = {1, 1, 1, 1};
  EXPECT_TRUE(std::isnan(spearman(x, c)));
}

}  // namespace
}  // namespace kvaudit::diagnose
