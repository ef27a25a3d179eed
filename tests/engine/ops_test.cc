// CPU ops against hand-computed values and plain scalar references (engine/ops.h).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/ops.h"

namespace kvaudit::engine::cpu {
namespace {

// Float32 arithmetic vs hand values written to 6-7 significant digits.
constexpr float kHandTol = 2e-6f;
// Kernel (fp32 FMA, 8-lane order) vs a double-precision reference: a few ulps of the row's scale.
constexpr double kRefRelTol = 1e-5;

std::vector<float> random_vec(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// ------------------------------------------------------------------ matmul

TEST(Matmul, MatchesNaiveTripleLoop) {
  for (int64_t k : {5, 8, 64, 77}) {
    const int64_t n = 7, m = 37;
    auto x = random_vec(size_t(n * k), 1);
    auto w = random_vec(size_t(m * k), 2);
    std::vector<float> y(size_t(n * m));
    matmul(x.data(), n, k, w.data(), m, y.data());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = 0; o < m; ++o) {
        double ref = 0, mag = 0;
        for (int64_t c = 0; c < k; ++c) {
          ref += double(x[size_t(t * k + c)]) * w[size_t(o * k + c)];
          mag += std::fabs(double(x[size_t(t * k + c)]) * w[size_t(o * k + c)]);
        }
        EXPECT_NEAR(y[size_t(t * m + o)], ref, kRefRelTol * mag) << "k=" << k << " t=" << t << " o=" << o;
      }
  }
}

TEST(Matmul, HandValues) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};      // [1, 10]
  std::vector<float> w(20, 1.0f);                                    // [2, 10]: ones, then 0..9
  for (int c = 0; c < 10; ++c) w[size_t(10 + c)] = float(c);
  std::vector<float> y(2);
  matmul(x.data(), 1, 10, w.data(), 2, y.data());
  EXPECT_EQ(y[0], 55.0f);
  EXPECT_EQ(y[1], 330.0f);  // sum c*(c+1), c=0..9
}

// Each output equals dot() bit for bit whatever the number of tokens (batch invariance).
TEST(Matmul, BitIdenticalAcrossBatchSizes) {
  const int64_t k = 100, m = 70, n = 41;
  auto x = random_vec(size_t(n * k), 3);
  auto w = random_vec(size_t(m * k), 4);
  std::vector<float> full(size_t(n * m));
  matmul(x.data(), n, k, w.data(), m, full.data());
  for (int64_t t = 0; t < n; ++t) {
    std::vector<float> one(static_cast<size_t>(m));
    matmul(x.data() + t * k, 1, k, w.data(), m, one.data());
    for (int64_t o = 0; o < m; ++o) {
      ASSERT_EQ(one[size_t(o)], full[size_t(t * m + o)]) << "t=" << t << " o=" << o;
      ASSERT_EQ(one[size_t(o)], dot(x.data() + t * k, w.data() + o * k, k));
    }
  }
}

// ------------------------------------------------------------------ rmsnorm

TEST(RmsNorm, PlainWeight) {
  const std::vector<float> x = {1, 2, 3, 4}, w = {1, 1, 2, 0.5f};
  std::vector<float> y(4);
  rmsnorm(NormKind::kRms, x.data(), 1, 4, w.data(), 0.0f, y.data());
  // mean(x^2) = 7.5, 1/sqrt(7.5) = 0.3651484
  EXPECT_NEAR(y[0], 0.3651484f, kHandTol);
  EXPECT_NEAR(y[1], 0.7302967f, kHandTol);
  EXPECT_NEAR(y[2], 2.1908902f, kHandTol);
  EXPECT_NEAR(y[3], 0.7302967f, kHandTol);
}

TEST(RmsNorm, OnePlusWeightAndEps) {
  const std::vector<float> x = {3, 4, 3, 4, 0, 0}, w = {0, 1};
  std::vector<float> y(6);
  // rows: [3, 4], [3, 4], [0, 0]; mean(x^2) = 12.5 (+ eps 0.5 = 13); (1 + w) = [1, 2]
  rmsnorm(NormKind::kRmsOnePlus, x.data(), 3, 2, w.data(), 0.5f, y.data());
  EXPECT_NEAR(y[0], 3.0f / std::sqrt(13.0f), kHandTol);
  EXPECT_NEAR(y[1], 8.0f / std::sqrt(13.0f), kHandTol);
  EXPECT_NEAR(y[2], 0.8320503f, kHandTol);
  EXPECT_EQ(y[4], 0.0f);
  EXPECT_EQ(y[5], 0.0f);
}

// ------------------------------------------------------------------ activations

TEST(Activation, HandValues) {
  EXPECT_NEAR(silu(1.0f), 0.7310586f, kHandTol);
  EXPECT_NEAR(silu(-2.0f), -0.2384058f, kHandTol);
  EXPECT_NEAR(gelu_tanh(1.0f), 0.8411920f, kHandTol);
  EXPECT_NEAR(gelu_tanh(-1.0f), -0.1588080f, kHandTol);
  EXPECT_NEAR(gelu_tanh(3.0f), 2.9963627f, 4 * kHandTol);
  EXPECT_NEAR(softcap(100.0f, 50.0f), 48.201379f, 1e-4f);   // 50 tanh(2)
  EXPECT_NEAR(softcap(1.0f, 30.0f), 0.9996297f, kHandTol);   // 30 tanh(1/30)
}

TEST(Activation, GatedSiluAndGelu) {
  const std::vector<float> gate_up = {1, -1, 2, 3};  // one row, d_ff = 2: gate [1, -1], up [2, 3]
  std::vector<float> out(2);
  gated_activation(Activation::kSilu, gate_up.data(), gate_up.data() + 2, 1, 2, 4, out.data());
  EXPECT_NEAR(out[0], 2 * 0.7310586f, kHandTol);
  EXPECT_NEAR(out[1], 3 * -0.2689414f, kHandTol);
  gated_activation(Activation::kGeluTanh, gate_up.data(), gate_up.data() + 2, 1, 2, 4, out.data());
  EXPECT_NEAR(out[0], 2 * 0.8411920f, kHandTol);
  EXPECT_NEAR(out[1], 3 * -0.1588080f, kHandTol);
}

TEST(Softmax, HandValues) {
  std::vector<float> x = {1, 2, 3};
  softmax(x.data(), 3);
  EXPECT_NEAR(x[0], 0.0900306f, kHandTol);
  EXPECT_NEAR(x[1], 0.2447285f, kHandTol);
  EXPECT_NEAR(x[2], 0.6652410f, kHandTol);
  std::vector<float> big = {1000, 1000};  // max subtraction keeps it finite
  softmax(big.data(), 2);
  EXPECT_EQ(big[0], 0.5f);
}

// ------------------------------------------------------------------ rope

TEST(Rope, RotateHalfPairsAndPositions) {
  // head_dim 4, 2 heads: pairs (0,2) and (1,3); inv_freq [1, 0.5]
  const std::vector<float> inv_freq = {1.0f, 0.5f};
  std::vector<float> x = {1, 0, 0, 2, /*head 1*/ 0, 1, 1, 0,  // position 3
                          1, 1, 1, 1, 1, 1, 1, 1};            // position 4
  rope(x.data(), 2, 2, 4, inv_freq, 1.0f, 3);
  const float c3 = std::cos(3.0f), s3 = std::sin(3.0f), c15 = std::cos(1.5f), s15 = std::sin(1.5f);
  // head 0, pos 3: (x0, x2) = (1, 0) by angle 3; (x1, x3) = (0, 2) by angle 1.5
  EXPECT_NEAR(x[0], c3, kHandTol);
  EXPECT_NEAR(x[2], s3, kHandTol);
  EXPECT_NEAR(x[1], -2 * s15, kHandTol);
  EXPECT_NEAR(x[3], 2 * c15, kHandTol);
  // head 1, pos 3: (x0, x2) = (0, 1) -> (-sin 3, cos 3); (x1, x3) = (1, 0) -> (cos 1.5, sin 1.5)
  EXPECT_NEAR(x[4], -s3, kHandTol);
  EXPECT_NEAR(x[6], c3, kHandTol);
  EXPECT_NEAR(x[5], c15, kHandTol);
  EXPECT_NEAR(x[7], s15, kHandTol);
  // pos 4, (1, 1) by angle 4 -> (cos4 - sin4, cos4 + sin4) = (0.1031589, -1.4104461)
  EXPECT_NEAR(x[8], 0.1031589f, kHandTol);
  EXPECT_NEAR(x[10], -1.4104461f, kHandTol);
}

TEST(Rope, PartialRotaryLeavesTailAndScales) {
  const std::vector<float> inv_freq = {1.0f};  // rotary_dim 2 of head_dim 4
  std::vector<float> x = {1, 0, 7, 9};
  rope(x.data(), 1, 1, 4, inv_freq, 2.0f, 1);
  EXPECT_NEAR(x[0], 2 * std::cos(1.0f), kHandTol);
  EXPECT_NEAR(x[1], 2 * std::sin(1.0f), kHandTol);
  EXPECT_EQ(x[2], 7.0f);
  EXPECT_EQ(x[3], 9.0f);
}

// ------------------------------------------------------------------ attention

// Scalar reference: softmax(mask(softcap(q.k * scale))) v, in double.
std::vector<float> attention_ref(const AttentionParams& p, const std::vector<float>& q, int64_t n_q,
                                 int64_t first_pos, const std::vector<float>& k, const std::vector<float>& v) {
  const int d = p.head_dim, group = p.n_heads / p.n_kv_heads;
  std::vector<float> out(q.size());
  for (int64_t i = 0; i < n_q; ++i)
    for (int h = 0; h < p.n_heads; ++h) {
      const int64_t pos = first_pos + i;
      std::vector<double> s;
      std::vector<int64_t> js;
      for (int64_t j = 0; j <= pos; ++j) {
        if (p.window > 0 && pos - j >= p.window) continue;
        double dot = 0;
        for (int c = 0; c < d; ++c)
          dot += double(q[size_t((i * p.n_heads + h) * d + c)]) * k[size_t((j * p.n_kv_heads + h / group) * d + c)];
        dot *= p.scale;
        if (p.softcap > 0) dot = p.softcap * std::tanh(dot / p.softcap);
        s.push_back(dot);
        js.push_back(j);
      }
      double mx = -1e300, sum = 0;
      for (double e : s) mx = std::max(mx, e);
      for (double& e : s) sum += (e = std::exp(e - mx));
      for (int c = 0; c < d; ++c) {
        double acc = 0;
        for (size_t a = 0; a < s.size(); ++a)
          acc += s[a] / sum * v[size_t((js[a] * p.n_kv_heads + h / group) * d + c)];
        out[size_t((i * p.n_heads + h) * d + c)] = float(acc);
      }
    }
  return out;
}

TEST(Attention, EqualScoresAverageValues) {
  AttentionParams p{.n_heads = 2, .n_kv_heads = 1, .head_dim = 2, .scale = 1.0f};
  const std::vector<float> q = {0, 0, 0, 0};           // [1 query, 2 heads * 2]: all scores 0
  const std::vector<float> k = {1, 2, 3, 4, 5, 6};     // [3, 1 * 2]
  const std::vector<float> v = {1, 10, 2, 20, 6, 60};  // [3, 2]
  std::vector<float> out(4);
  attention(p, q.data(), 1, 2, k.data(), v.data(), 3, out.data());
  EXPECT_NEAR(out[0], 3.0f, kHandTol);  // mean of 1, 2, 6
  EXPECT_NEAR(out[1], 30.0f, 1e-5f);
  EXPECT_NEAR(out[2], 3.0f, kHandTol);  // both query heads read the one KV head (GQA)
  // Causal: query at position 0 sees only key 0
  attention(p, q.data(), 1, 0, k.data(), v.data(), 3, out.data());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 10.0f);
}

TEST(Attention, TwoKeysHandValue) {
  AttentionParams p{.n_heads = 1, .n_kv_heads = 1, .head_dim = 2, .scale = 0.5f};
  const std::vector<float> q = {1, 1};
  const std::vector<float> k = {2, 0, 0, 0};  // scores 1, 0 after scale
  const std::vector<float> v = {1, 0, 0, 1};
  std::vector<float> out(2);
  attention(p, q.data(), 1, 1, k.data(), v.data(), 2, out.data());
  EXPECT_NEAR(out[0], 0.7310586f, kHandTol);  // sigmoid(1)
  EXPECT_NEAR(out[1], 0.2689414f, kHandTol);
  p.softcap = 0.5f;  // score 0.5 tanh(2) = 0.4820138
  attention(p, q.data(), 1, 1, k.data(), v.data(), 2, out.data());
  EXPECT_NEAR(out[0], 0.6182233f, kHandTol);  // sigmoid(0.4820138)
}

TEST(Attention, SlidingWindowDropsOldKeys) {
  AttentionParams p{.n_heads = 1, .n_kv_heads = 1, .head_dim = 1, .scale = 1.0f, .window = 2};
  const std::vector<float> q = {0};
  const std::vector<float> k = {0, 0, 0, 0};
  const std::vector<float> v = {100, 1, 2, 3};
  std::vector<float> out(1);
  attention(p, q.data(), 1, 3, k.data(), v.data(), 4, out.data());
  EXPECT_NEAR(out[0], 2.5f, kHandTol);  // keys 2, 3 only (3 - j < 2)
}

struct AttentionCase {
  int n_heads, n_kv_heads, head_dim;
  float softcap;
  int64_t window;
};

class AttentionVsReference : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionVsReference, PrefillChunkAfterCache) {
  const AttentionCase c = GetParam();
  AttentionParams p{c.n_heads, c.n_kv_heads, c.head_dim, 1.0f / std::sqrt(float(c.head_dim)), c.softcap, c.window};
  const int64_t n_kv = 13, first = 5, n_q = n_kv - first;
  auto q = random_vec(size_t(n_q * c.n_heads * c.head_dim), 7, 2.0f);
  auto k = random_vec(size_t(n_kv * c.n_kv_heads * c.head_dim), 8, 2.0f);
  auto v = random_vec(size_t(n_kv * c.n_kv_heads * c.head_dim), 9);
  std::vector<float> out(q.size());
  attention(p, q.data(), n_q, first, k.data(), v.data(), n_kv, out.data());
  const auto ref = attention_ref(p, q, n_q, first, k, v);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], 1e-5f) << i;
}

INSTANTIATE_TEST_SUITE_P(Ops, AttentionVsReference,
                         ::testing::Values(AttentionCase{4, 4, 8, 0, 0}, AttentionCase{4, 2, 16, 0, 0},
                                           AttentionCase{6, 2, 9, 0, 0}, AttentionCase{4, 1, 8, 5.0f, 0},
                                           AttentionCase{4, 2, 8, 0, 3}, AttentionCase{4, 2, 8, 2.0f, 4}));

}  // namespace
}  // namespace kvaudit::engine::cpu
