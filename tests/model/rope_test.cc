// RoPE frequencies against values worked out from transformers' formulas (modeling_rope_utils).
#include <gtest/gtest.h>

#include "model/rope.h"
#include "tiny_model.h"

namespace kvaudit::model {
namespace {

// powf and the fp32 chain of the llama3 formula vs the float64 hand computation.
constexpr float kRelTol = 2e-6f;

ModelConfig head_config(int head_dim, float theta) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope_theta = theta;
  c.max_position = 8192;
  return c;
}

TEST(Rope, DefaultInverseFrequencies) {
  const std::vector<float> f = rope_inv_freq(head_config(4, 10000.0f), 10);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_FLOAT_EQ(f[0], 1.0f);
  EXPECT_FLOAT_EQ(f[1], 0.01f);  // 10000^(-2/4)
  EXPECT_FLOAT_EQ(rope_attention_scaling(head_config(4, 10000.0f)), 1.0f);
}

TEST(Rope, PartialRotary) {
  ModelConfig c = head_config(8, 10000.0f);
  c.partial_rotary_factor = 0.5f;
  const std::vector<float> f = rope_inv_freq(c, 1);
  ASSERT_EQ(f.size(), 2u);  // rotary_dim 4
  EXPECT_FLOAT_EQ(f[1], 0.01f);
}

TEST(Rope, Llama31Scaling) {
  // Llama-3.1: theta 500000, head_dim 128, factor 8, low 1, high 4, original 8192.
  ModelConfig c = head_config(128, 500000.0f);
  c.rope_scaling.type = RopeType::kLlama3;
  c.rope_scaling.factor = 8;
  c.rope_scaling.low_freq_factor = 1;
  c.rope_scaling.high_freq_factor = 4;
  c.rope_scaling.original_max_position = 8192;
  const std::vector<float> f = rope_inv_freq(c, 100);
  ASSERT_EQ(f.size(), 64u);
  EXPECT_FLOAT_EQ(f[0], 1.0f);  // wavelength 2pi < 8192/4: unchanged
  // i = 30: wavelength 2948.3 in the medium band, smooth = (8192/2948.3 - 1)/3 = 0.59287,
  // inv 0.00213112 -> (1 - smooth) * inv/8 + smooth * inv = 0.00137189357.
  EXPECT_NEAR(f[30], 0.0013718935677611381, 0.0013718935677611381 * kRelTol);
  // i = 63: wavelength 2.56e6 > 8192: inv / 8.
  EXPECT_NEAR(f[63], 3.068925988914511e-07, 3.068925988914511e-07 * kRelTol);
}

TEST(Rope, LinearScaling) {
  ModelConfig c = head_config(4, 10000.0f);
  c.rope_scaling.type = RopeType::kLinear;
  c.rope_scaling.factor = 4;
  const std::vector<float> f = rope_inv_freq(c, 1);
  EXPECT_FLOAT_EQ(f[0], 0.25f);
  EXPECT_FLOAT_EQ(f[1], 0.0025f);
}

TEST(Rope, Phi35LongropeShortLongAndAttentionFactor) {
  ModelConfig c = head_config(4, 10000.0f);
  c.max_position = 131072;
  c.rope_scaling.type = RopeType::kLongrope;
  c.rope_scaling.original_max_position = 4096;
  c.rope_scaling.short_factor = {1.0f, 2.0f};
  c.rope_scaling.long_factor = {4.0f, 8.0f};
  std::vector<float> f = rope_inv_freq(c, 4096);  // not longer than the original: short factors
  EXPECT_FLOAT_EQ(f[0], 1.0f);
  EXPECT_FLOAT_EQ(f[1], 0.005f);
  f = rope_inv_freq(c, 4097);
  EXPECT_FLOAT_EQ(f[0], 0.25f);
  EXPECT_FLOAT_EQ(f[1], 0.00125f);
  // One key per set of frequencies (a caller computes each once).
  EXPECT_EQ(rope_inv_freq_key(c, 1), rope_inv_freq_key(c, 4096));
  EXPECT_NE(rope_inv_freq_key(c, 4096), rope_inv_freq_key(c, 4097));
  EXPECT_EQ(rope_inv_freq_key(c, 4097), rope_inv_freq_key(c, 100000));
  EXPECT_EQ(rope_inv_freq_key(head_config(4, 10000.0f), 1), rope_inv_freq_key(head_config(4, 10000.0f), 1 << 20));
  // sqrt(1 + ln(131072/4096) / ln(4096)) for Phi-3.5-mini.
  EXPECT_NEAR(rope_attention_scaling(c), 1.1902380714238083, 1e-6);
  // Without original_max_position_embeddings: rope_scaling.factor over max_position,
  // sqrt(1 + ln 4 / ln 131072).
  c.rope_scaling.original_max_position = 0;
  c.rope_scaling.factor = 4;
  EXPECT_NEAR(rope_attention_scaling(c), 1.0571882797418488, 1e-6);
}

}  // namespace
}  // namespace kvaudit::model
