// The two real GGUF models of scripts/fetch-models.sh (skipped when absent): config values from
// their model cards and weight shapes. The full Qwen load (1.8B values, 7 GB of fp32, ~40 s on a
// busy 2-core machine) runs only with KVAUDIT_SLOW_TESTS=1; its config is checked always.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "io/gguf.h"
#include "model/gguf_model.h"
#include "model/model.h"

namespace kvaudit::model {
namespace {

std::string real_model(const char* file) {
  const char* home = std::getenv("HOME");
  const std::string p = std::string(home ? home : "") + "/.cache/kvaudit/" + file;
  return std::filesystem::exists(p) ? p : "";
}

struct Loaded {
  Model model;
  double seconds;
};

Loaded timed_load(const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadOptions opt;
  opt.compute_sha256 = false;  // timed separately by the CLI; not what these tests check
  Model m = load_model(path, opt);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {std::move(m), s};
}

TEST(RealModels, SmolLM2GgufLoadsAsLlama) {
  const std::string path = real_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (path.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not fetched (scripts/fetch-models.sh)";
  const Loaded l = timed_load(path);
  const ModelConfig& c = l.model.config;
  std::printf("[ SmolLM2-135M Q4_1 ] loaded in %.2f s, %lld params\n", l.seconds, (long long)l.model.n_params);
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.d_model, 576);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.d_ff, 1536);
  EXPECT_EQ(c.n_vocab, 49152);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_TRUE(l.model.weights.lm_head.empty());
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FLOAT_EQ(c.rope_theta, 100000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kDefault);
  EXPECT_EQ(c.eos_ids, std::vector<int>{2});  // <|im_end|>
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(l.model.weights_dtype, "Q8_0");  // llama.cpp keeps token_embd at Q8_0 in Q4_1 files
  // 134,515,008 parameters with the tied embedding counted once (SmolLM2-135M).
  EXPECT_EQ(l.model.n_params, 134515008);
  const LayerWeights& L = l.model.weights.layers[5];
  EXPECT_EQ(L.wq.size(), 576u * 576u);
  EXPECT_EQ(L.wk.size(), 192u * 576u);
  EXPECT_EQ(L.w_down.size(), 576u * 1536u);
  EXPECT_TRUE(L.bq.empty());
  EXPECT_TRUE(L.q_norm.empty());
}

void expect_qwen25_coder_config(const ModelConfig& c) {
  EXPECT_EQ(c.arch, "qwen2");
  EXPECT_EQ(c.n_layers, 28);
  EXPECT_EQ(c.d_model, 1536);
  EXPECT_EQ(c.n_heads, 12);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.d_ff, 8960);
  EXPECT_EQ(c.n_vocab, 151936);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.tie_embeddings);  // this GGUF stores output.weight (Q6_K)
  EXPECT_FLOAT_EQ(c.rope_theta, 1000000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.max_position, 32768);
  EXPECT_EQ(c.eos_ids, std::vector<int>{151645});  // <|im_end|>
  EXPECT_EQ(c.bos_id, 151643);
}

TEST(RealModels, Qwen25CoderGgufConfig) {
  const std::string path = real_model("Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf");
  if (path.empty()) GTEST_SKIP() << "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf not fetched (scripts/fetch-models.sh)";
  expect_qwen25_coder_config(config_from_gguf(*io::GgufFile::open(path)));
}

TEST(RealModels, Qwen25CoderGgufLoadsAsQwen2) {
  const std::string path = real_model("Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf");
  if (path.empty()) GTEST_SKIP() << "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf not fetched (scripts/fetch-models.sh)";
  if (!std::getenv("KVAUDIT_SLOW_TESTS")) GTEST_SKIP() << "7 GB / ~40 s load: set KVAUDIT_SLOW_TESTS=1";
  const Loaded l = timed_load(path);
  std::printf("[ Qwen2.5-Coder-1.5B Q4_K_M ] loaded in %.2f s, %lld params\n", l.seconds,
              (long long)l.model.n_params);
  expect_qwen25_coder_config(l.model.config);
  // 1,543,714,304 parameters plus the stored output matrix 151936 x 1536.
  EXPECT_EQ(l.model.n_params, 1543714304 + 151936LL * 1536);
  const LayerWeights& L = l.model.weights.layers[5];
  EXPECT_EQ(L.bq.size(), 1536u);
  EXPECT_EQ(L.bk.size(), 256u);
  EXPECT_EQ(L.bv.size(), 256u);
  EXPECT_EQ(L.wk.size(), 256u * 1536u);
}

}  // namespace
}  // namespace kvaudit::model
