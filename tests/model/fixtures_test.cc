// The tiny transformers models of tests/fixtures/models (tools/make_tiny_models.py) load, and their
// transformers 4.x config (config.v4.json) parses to the same ModelConfig as the 5.x one.
#include <filesystem>

#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "model/model.h"

namespace kvaudit::model {
namespace {

namespace fs = std::filesystem;

const std::string kModels = std::string(KVAUDIT_FIXTURES) + "/models";

void expect_same_config(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.d_model, b.d_model);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.d_ff, b.d_ff);
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position, b.rope_scaling.original_max_position);
  EXPECT_EQ(a.partial_rotary_factor, b.partial_rotary_factor);
  EXPECT_EQ(a.max_position, b.max_position);
  EXPECT_EQ(a.tie_embeddings, b.tie_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.act, b.act);
  EXPECT_EQ(a.attn_softcap, b.attn_softcap);
  EXPECT_EQ(a.final_softcap, b.final_softcap);
  EXPECT_EQ(a.query_pre_attn_scalar, b.query_pre_attn_scalar);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.layer_sliding, b.layer_sliding);
  EXPECT_EQ(a.eos_ids, b.eos_ids);
  EXPECT_EQ(a.bos_id, b.bos_id);
}

std::vector<std::string> fixture_cases() {
  std::vector<std::string> cases;
  if (fs::is_directory(kModels))
    for (const auto& e : fs::directory_iterator(kModels))
      if (fs::exists(e.path() / "config.json")) cases.push_back(e.path().filename().string());
  std::sort(cases.begin(), cases.end());
  return cases;
}

TEST(Fixtures, EveryCaseLoadsAndBothConfigStylesAgree) {
  const std::vector<std::string> cases = fixture_cases();
  if (cases.empty()) GTEST_SKIP() << "no tests/fixtures/models";
  for (const std::string& name : cases) {
    SCOPED_TRACE(name);
    const std::string dir = kModels + "/" + name;
    LoadOptions opt;
    opt.compute_sha256 = false;
    const Model m = load_model(dir, opt);
    EXPECT_EQ(m.config.n_layers, 2);
    EXPECT_EQ(m.config.d_model, 48);
    EXPECT_EQ(m.config.n_vocab, 96);
    EXPECT_EQ(m.weights_dtype, name.ends_with("-bf16") ? "BF16" : "F32");
    if (fs::exists(dir + "/config.v4.json")) expect_same_config(read_config_json(dir + "/config.v4.json"), m.config);
  }
}

TEST(Fixtures, PerCaseFeatures) {
  if (!fs::exists(kModels + "/gemma2/config.json")) GTEST_SKIP() << "no tests/fixtures/models";
  LoadOptions opt;
  opt.compute_sha256 = false;
  const Model g = load_model(kModels + "/gemma2", opt);
  EXPECT_EQ(g.config.head_dim, 16);
  EXPECT_EQ(g.config.sliding_window, 8);
  EXPECT_EQ(g.config.layer_sliding, (std::vector<bool>{true, false}));
  EXPECT_FLOAT_EQ(g.config.attn_softcap, 2.0f);
  EXPECT_FLOAT_EQ(g.config.final_softcap, 3.0f);
  EXPECT_FLOAT_EQ(g.config.attn_scale(), 1.0f / std::sqrt(24.0f));
  EXPECT_TRUE(g.config.tie_embeddings);
  EXPECT_EQ(g.arch.norm, NormKind::kRmsOnePlusWeight);

  const Model l3 = load_model(kModels + "/llama3", opt);
  EXPECT_EQ(l3.config.rope_scaling.type, RopeType::kLlama3);
  EXPECT_FLOAT_EQ(l3.config.rope_scaling.factor, 8.0f);
  EXPECT_EQ(l3.config.rope_scaling.original_max_position, 256);
  EXPECT_FALSE(l3.weights.lm_head.empty());

  const Model q3 = load_model(kModels + "/qwen3", opt);
  EXPECT_EQ(q3.config.head_dim, 16);
  EXPECT_EQ(q3.weights.layers[0].wq.size(), 64u * 48u);
  EXPECT_EQ(q3.weights.layers[0].q_norm.size(), 16u);
  EXPECT_EQ(q3.config.sliding_window, 0);

  const Model o = load_model(kModels + "/olmo2", opt);
  EXPECT_EQ(o.weights.layers[1].q_norm.size(), 48u);
  EXPECT_EQ(o.weights.layers[1].k_norm.size(), 24u);

  const Model q2 = load_model(kModels + "/qwen2", opt);
  EXPECT_EQ(q2.weights.layers[1].bv.size(), 24u);

  // phi3: rows [q; k; v] of qkv_proj and [gate; up] of gate_up_proj.
  const Model p = load_model(kModels + "/phi3", opt);
  auto src = io::SafetensorsSource::open(kModels + "/phi3");
  std::vector<float> qkv(96 * 48), gate_up(128 * 48);
  src->read_f32("model.layers.1.self_attn.qkv_proj.weight", qkv);
  src->read_f32("model.layers.1.mlp.gate_up_proj.weight", gate_up);
  const LayerWeights& L = p.weights.layers[1];
  EXPECT_EQ(L.wq.to_f32(), std::vector<float>(qkv.begin(), qkv.begin() + 48 * 48));
  EXPECT_EQ(L.wk.to_f32(), std::vector<float>(qkv.begin() + 48 * 48, qkv.begin() + 72 * 48));
  EXPECT_EQ(L.wv.to_f32(), std::vector<float>(qkv.begin() + 72 * 48, qkv.end()));
  EXPECT_EQ(L.w_gate.to_f32(), std::vector<float>(gate_up.begin(), gate_up.begin() + 64 * 48));
  EXPECT_EQ(L.w_up.to_f32(), std::vector<float>(gate_up.begin() + 64 * 48, gate_up.end()));
}

}  // namespace
}  // namespace kvaudit::model
