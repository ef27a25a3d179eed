#include "eval/ppl_runner.h"

#include <cmath>

#include <gtest/gtest.h>

namespace kvaudit::eval {
namespace {

// Vocabulary of 4. The baseline predicts uniformly (ppl 4); any other policy puts logit ln 3 on
// (token + 1) % 4, i.e. probability 1/2 there and 1/6 elsewhere.
class CountingBackend : public engine::Backend {
 public:
  explicit CountingBackend(const model::Model& m) : model_(m) {}
  engine::Device device() const override { return engine::Device::kCpu; }
  const model::Model& model() const override { return model_; }
  engine::Logits forward(std::span<const engine::SeqInput> batch, const engine::Hooks*) override {
    engine::Logits out;
    out.n_vocab = 4;
    out.first_row.push_back(0);
    for (const auto& in : batch) {
      EXPECT_TRUE(in.all_logits);
      for (int t : in.tokens) {
        float row[4] = {0, 0, 0, 0};
        if (!in.seq->policy().is_baseline()) row[(t + 1) % 4] = float(std::log(3.0));
        out.data.insert(out.data.end(), row, row + 4);
      }
      out.first_row.push_back(out.first_row.back() + int64_t(in.tokens.size()));
      ++forwards;
    }
    return out;
  }
  int forwards = 0;

 private:
  const model::Model& model_;
};

TEST(PplRunner, PerplexityRatioAndKl) {
  model::Model m;
  m.config.n_layers = 1;
  m.config.n_kv_heads = 1;
  m.config.head_dim = 32;
  m.config.n_vocab = 4;
  CountingBackend be(m);
  std::vector<int> tokens(20);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int(i % 4);  // next = (t + 1) % 4
  const std::vector<SchemeRun> schemes = {
      {"fp16", nullptr}, {"int8", std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int8"))}};
  PplOptions opt;
  opt.window = 8;
  opt.stride = 4;
  const auto r = run_perplexity(be, tokens, schemes, opt);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].n_scored, 19u);
  EXPECT_EQ(be.forwards, 2 * 4);  // windows at 0, 4, 8, 12 (end 20), two schemes each
  constexpr double kTol = 1e-6;   // float logits (ln 3 rounded to float)
  EXPECT_NEAR(r[0].ppl, 4.0, kTol);
  EXPECT_NEAR(r[1].ppl, 2.0, kTol);
  EXPECT_NEAR(r[1].ppl_ratio, 0.5, kTol);
  EXPECT_EQ(r[0].kl, 0.0);
  EXPECT_NEAR(r[1].kl, 0.25 * std::log(0.5) + 0.75 * std::log(1.5), kTol);
  opt.max_windows = 1;
  EXPECT_EQ(run_perplexity(be, tokens, schemes, opt)[0].n_scored, 7u);
  EXPECT_TRUE(std::isnan(run_perplexity(be, {5}, schemes, opt)[1].ppl));
}

// --score-from (llama-perplexity's windows): windows [0,8) [8,16) [16,20) score only the targets
// predicted from positions >= 4: 5,6,7 and 13,14,15; the last window has none and is not run.
TEST(PplRunner, ScoreFromScoresTheSecondHalfOfEachWindow) {
  model::Model m;
  m.config.n_layers = 1;
  m.config.n_kv_heads = 1;
  m.config.head_dim = 32;
  m.config.n_vocab = 4;
  CountingBackend be(m);
  std::vector<int> tokens(20);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int(i % 4);
  const std::vector<SchemeRun> schemes = {
      {"fp16", nullptr}, {"int8", std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int8"))}};
  PplOptions opt;
  opt.window = 8;
  opt.stride = 8;
  opt.score_from = 4;
  const auto r = run_perplexity(be, tokens, schemes, opt);
  EXPECT_EQ(r[0].n_scored, 6u);
  EXPECT_EQ(be.forwards, 2 * 2);
  EXPECT_NEAR(r[1].ppl_ratio, 0.5, 1e-6);
  opt.score_from = 0;  // without it: 7 + 7 + 3 targets (a window's first token has no context)
  EXPECT_EQ(run_perplexity(be, tokens, schemes, opt)[0].n_scored, 17u);
}

// The targets between two windows' scored spans (ppl prints a note when --score-from makes any).
TEST(PplRunner, GapPerWindow) {
  EXPECT_EQ(ppl_gap_per_window({.window = 512, .stride = 512, .score_from = 256}), 257u);  // llama-perplexity
  EXPECT_EQ(ppl_gap_per_window({.window = 8, .stride = 8, .score_from = 4}), 5u);  // 20 tokens: 3 + 3 scored
  EXPECT_EQ(ppl_gap_per_window({.window = 8, .stride = 8, .score_from = 0}), 1u);  // a window's first token
  EXPECT_EQ(ppl_gap_per_window({.window = 2048, .stride = 512, .score_from = 1535}), 0u);
  EXPECT_EQ(ppl_gap_per_window({.window = 2048, .stride = 512, .score_from = 1536}), 1u);
}

}  // namespace
}  // namespace kvaudit::eval
