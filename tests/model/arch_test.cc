// Every architecture's spec (SPEC.md §1): the block structure the forward pass reads.
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/arch.h"

namespace kvaudit::model {
namespace {

TEST(Arch, SupportedList) {
  EXPECT_EQ(supported_archs(),
            (std::vector<std::string>{"gemma2", "llama", "mistral", "olmo2", "phi3", "qwen2", "qwen3"}));
  EXPECT_THROW(arch_spec("falcon"), UsageError);
}

TEST(Arch, LlamaAndMistralArePlainPreNorm) {
  for (const char* name : {"llama", "mistral"}) {
    const ArchSpec& s = arch_spec(name);
    EXPECT_EQ(s.name, name);
    EXPECT_EQ(s.norm, NormKind::kRms);
    EXPECT_TRUE(s.pre_attn_norm && s.pre_ffn_norm);
    EXPECT_FALSE(s.post_attn_norm || s.post_ffn_norm);
    EXPECT_FALSE(s.qkv_bias);
    EXPECT_EQ(s.qk_norm, QkNorm::kNone);
    EXPECT_EQ(s.default_act, Activation::kSilu);
    EXPECT_FALSE(s.embed_scale_sqrt_d || s.softcaps || s.fused_qkv || s.fused_gate_up);
    EXPECT_TRUE(s.gguf_qk_permuted);
  }
}

TEST(Arch, Qwen2HasQkvBias) {
  const ArchSpec& s = arch_spec("qwen2");
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_EQ(s.qk_norm, QkNorm::kNone);
  EXPECT_FALSE(s.gguf_qk_permuted);
}

TEST(Arch, Qwen3HasPerHeadQkNorm) {
  const ArchSpec& s = arch_spec("qwen3");
  EXPECT_FALSE(s.qkv_bias);
  EXPECT_EQ(s.qk_norm, QkNorm::kPerHead);
  EXPECT_FALSE(s.gguf_qk_permuted);
}

TEST(Arch, Phi3FusesQkvAndGateUp) {
  const ArchSpec& s = arch_spec("phi3");
  EXPECT_TRUE(s.fused_qkv);
  EXPECT_TRUE(s.fused_gate_up);
  EXPECT_TRUE(s.pre_attn_norm && s.pre_ffn_norm);
  EXPECT_FALSE(s.gguf_qk_permuted);
}

TEST(Arch, Gemma2) {
  const ArchSpec& s = arch_spec("gemma2");
  EXPECT_EQ(s.norm, NormKind::kRmsOnePlusWeight);
  EXPECT_TRUE(s.pre_attn_norm && s.post_attn_norm && s.pre_ffn_norm && s.post_ffn_norm);
  EXPECT_EQ(s.default_act, Activation::kGeluTanh);
  EXPECT_TRUE(s.embed_scale_sqrt_d);
  EXPECT_TRUE(s.softcaps);
  EXPECT_TRUE(s.sliding_alternating);
  EXPECT_TRUE(s.gguf_norms_plus_one);
}

TEST(Arch, Olmo2PostNormsAndFullQkNorm) {
  const ArchSpec& s = arch_spec("olmo2");
  EXPECT_FALSE(s.pre_attn_norm || s.pre_ffn_norm);
  EXPECT_TRUE(s.post_attn_norm && s.post_ffn_norm);
  EXPECT_EQ(s.qk_norm, QkNorm::kFull);
  EXPECT_EQ(s.norm, NormKind::kRms);
}

}  // namespace
}  // namespace kvaudit::model
