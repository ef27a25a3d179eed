#include "eval/perplexity.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace kvaudit::eval {
namespace {

TEST(PplWindows, HuggingFaceStrideScheme) {
  // 5000 tokens, window 2048, stride 512: windows begin at 0, 512, ..., 2560 (its end reaches
  // 4608 < 5000), 3072 (end 5000) -> stop.
  const auto w = ppl_windows(5000);
  ASSERT_EQ(w.size(), 7u);
  EXPECT_EQ(w[0].begin, 0u);
  EXPECT_EQ(w[0].end, 2048u);
  EXPECT_EQ(w[0].score_from, 1u);  // token 0 has no context
  EXPECT_EQ(w[1].begin, 512u);
  EXPECT_EQ(w[1].end, 2560u);
  EXPECT_EQ(w[1].score_from, 2048u);  // only the 512 new tokens
  EXPECT_EQ(w[6].begin, 3072u);
  EXPECT_EQ(w[6].end, 5000u);
  EXPECT_EQ(w[6].score_from, 4608u);
  size_t scored = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    scored += w[i].end - w[i].score_from;
    if (i > 0) {
      EXPECT_EQ(w[i].score_from, w[i - 1].end) << "contiguous, no token twice";
    }
  }
  EXPECT_EQ(scored, 4999u);
}

TEST(PplWindows, ShortAndTinyInputs) {
  const auto w = ppl_windows(100);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].begin, 0u);
  EXPECT_EQ(w[0].end, 100u);
  EXPECT_EQ(w[0].score_from, 1u);
  EXPECT_TRUE(ppl_windows(1).empty());
  EXPECT_TRUE(ppl_windows(0).empty());
  EXPECT_THROW(ppl_windows(10, 4, 8), std::logic_error);
  // Exactly one window plus one stride.
  const auto v = ppl_windows(2560);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[1].end, 2560u);
}

TEST(Perplexity, FromNll) {
  EXPECT_NEAR(perplexity(10 * std::log(4.0), 10), 4.0, 1e-12);
  EXPECT_TRUE(std::isnan(perplexity(0, 0)));
}

// References from scipy 1.17.1 log_softmax in float64 over the float32 rows below.
TEST(TokenKl, MatchesScipy) {
  const std::vector<float> base = {1.0f, 2.0f, 3.0f, 0.5f};
  const std::vector<float> quant = {1.5f, 1.0f, 2.5f, 0.0f};
  EXPECT_NEAR(token_kl(base, quant), 0.08456093880599251, 1e-14);
  EXPECT_EQ(token_kl(base, base), 0.0);
  EXPECT_NEAR(token_nll(base, 2), 0.4607734891568512, 1e-14);
  EXPECT_NEAR(token_nll(base, 3), 2.960773489156851, 1e-14);
  EXPECT_THROW(token_nll(base, 4), std::logic_error);
  EXPECT_THROW(token_kl(base, {quant.data(), 3}), std::logic_error);
}

TEST(TokenKl, MaskedLogitAddsNothing) {
  const std::vector<float> base = {0.0f, -INFINITY};
  const std::vector<float> quant = {0.0f, 0.0f};
  EXPECT_NEAR(token_kl(base, quant), std::log(2.0), 1e-15);  // 1·(0 - log ½)
}

TEST(MeanAccumulator, UndefinedWhenEmpty) {
  MeanAccumulator m;
  EXPECT_TRUE(std::isnan(m.mean()));
  m.add(1);
  m.add(2);
  EXPECT_EQ(m.mean(), 1.5);
  EXPECT_EQ(m.count(), 2u);
}

}  // namespace
}  // namespace kvaudit::eval
