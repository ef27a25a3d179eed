// Loading tiny HF directories of every architecture: each tensor lands in its slot unchanged,
// fused phi3 tensors are split, and a missing or mis-shaped tensor is an error naming the file
// and the tensor (SPEC.md §1; STYLE.md: a missing expected weight is an error).
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/model.h"
#include "model/sha256.h"
#include "tiny_model.h"

namespace kvaudit::model {
namespace {

using nlohmann::json;
using namespace testing_util;

template <typename F>
std::string usage_message(F f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

// The config with what `arch` needs beyond tiny_config.
json arch_config(const std::string& arch) {
  json j = tiny_config(arch);
  if (arch == "gemma2") {
    j["head_dim"] = 4;
    j["query_pre_attn_scalar"] = 4;
    j["attn_logit_softcapping"] = 50.0;
    j["final_logit_softcapping"] = 30.0;
    j["sliding_window"] = 4;
  }
  if (arch == "phi3") j["num_key_value_heads"] = 2;
  return j;
}

// Every slot holds the known values of the HF tensor it comes from (fused ones: their row block).
void expect_known_weights(const Model& m) {
  Weights loaded = m.weights;  // weight_parts points into the Weights it is given
  for (const PartRef& p : weight_parts(m.config, m.arch, loaded)) {
    const std::string name = hf_tensor_name(p.part, p.layer, m.arch);
    const std::vector<float> got = p.is_matrix() ? p.mat->to_f32() : *p.dst;
    ASSERT_EQ(int64_t(got.size()), numel(p.shape)) << name;
    EXPECT_EQ(got, known_values(name, numel(p.shape))) << name;
  }
}

class EveryArch : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryArch, HfDirectoryLoadsEveryTensorUnchanged) {
  const std::string arch = GetParam();
  const std::string dir = write_hf_model(arch, arch_config(arch));
  LoadOptions opt;
  const Model m = load_model(dir, opt);
  EXPECT_EQ(m.config.arch, arch);
  EXPECT_EQ(m.arch.name, arch);
  EXPECT_EQ(m.path, dir);
  EXPECT_EQ(m.weights_dtype, "F32");
  EXPECT_EQ(m.weights_sha256, sha256_files({dir + "/model.safetensors"}));
  EXPECT_EQ(m.weights_sha256.size(), 64u);
  expect_known_weights(m);
  Weights w;
  int64_t expect_params = 0;
  for (const PartRef& p : weight_parts(m.config, m.arch, w)) expect_params += numel(p.shape);
  EXPECT_EQ(m.n_params, expect_params);
}

INSTANTIATE_TEST_SUITE_P(Model, EveryArch,
                         ::testing::Values("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "olmo2"));

TEST(Loader, SlotShapesPerArch) {
  Model m = load_model(write_hf_model("qwen3", arch_config("qwen3")));
  EXPECT_EQ(m.weights.layers[0].q_norm.size(), 4u);  // [head_dim]
  EXPECT_TRUE(m.weights.layers[0].bq.empty());
  EXPECT_TRUE(m.weights.layers[0].post_attn_norm.empty());
  m = load_model(write_hf_model("olmo2", arch_config("olmo2")));
  EXPECT_EQ(m.weights.layers[1].q_norm.size(), 8u);  // [n_heads*head_dim]
  EXPECT_EQ(m.weights.layers[1].k_norm.size(), 4u);  // [n_kv_heads*head_dim]
  EXPECT_TRUE(m.weights.layers[1].attn_norm.empty());
  EXPECT_TRUE(m.weights.layers[1].ffn_norm.empty());
  EXPECT_EQ(m.weights.layers[1].post_ffn_norm.size(), 8u);
  m = load_model(write_hf_model("qwen2", arch_config("qwen2")));
  EXPECT_EQ(m.weights.layers[0].bq.size(), 8u);
  EXPECT_EQ(m.weights.layers[0].bk.size(), 4u);
  m = load_model(write_hf_model("gemma2", arch_config("gemma2")));
  EXPECT_EQ(m.weights.layers[0].post_attn_norm.size(), 8u);
  EXPECT_EQ(m.arch.norm, NormKind::kRmsOnePlusWeight);
}

TEST(Loader, Phi3FusedTensorsSplitInOrder) {
  // Hand-check one row of each block: q rows 0..7, k rows 8..15, v rows 16..23 of qkv_proj;
  // gate rows 0..11, up rows 12..23 of gate_up_proj (Phi3MLP: gate, up = chunk(2, dim=-1)).
  const std::string dir = write_hf_model("phi3", arch_config("phi3"));
  const Model m = load_model(dir);
  const std::vector<float> qkv = known_values("model.layers.1.self_attn.k_proj.weight", 64);
  EXPECT_EQ(m.weights.layers[1].wk.to_f32(), qkv);
  auto src = io::SafetensorsSource::open(dir);
  std::vector<float> fused(24 * 8);
  src->read_f32("model.layers.1.self_attn.qkv_proj.weight", fused);
  EXPECT_EQ(std::vector<float>(fused.begin() + 8 * 8, fused.begin() + 16 * 8), m.weights.layers[1].wk.to_f32());
  EXPECT_EQ(std::vector<float>(fused.begin() + 16 * 8, fused.end()), m.weights.layers[1].wv.to_f32());
  std::vector<float> gate_up(24 * 8);
  src->read_f32("model.layers.0.mlp.gate_up_proj.weight", gate_up);
  EXPECT_EQ(std::vector<float>(gate_up.begin(), gate_up.begin() + 12 * 8), m.weights.layers[0].w_gate.to_f32());
  EXPECT_EQ(std::vector<float>(gate_up.begin() + 12 * 8, gate_up.end()), m.weights.layers[0].w_up.to_f32());
}

TEST(Loader, Bf16WeightsLoadExactly) {
  const std::string dir = write_hf_model("llama", arch_config("llama"), {}, "BF16");
  const Model m = load_model(dir);
  EXPECT_EQ(m.weights_dtype, "BF16");
  expect_known_weights(m);  // known values are multiples of 1/64: exact in bf16
}

TEST(Loader, TiedEmbeddingsNeedNoLmHead) {
  json j = arch_config("llama");
  j["tie_word_embeddings"] = true;
  const Model m = load_model(write_hf_model("tied", j));
  EXPECT_TRUE(m.weights.lm_head.empty());
  EXPECT_EQ(&m.weights.output_matrix(), &m.weights.embed);
}

TEST(Loader, MissingTensorIsAnErrorNamingFileAndTensor) {
  const std::string dir = write_hf_model("missing", arch_config("qwen2"), [](auto& t) {
    erase_tensor(t, "model.layers.1.self_attn.k_proj.bias");
  });
  const std::string msg = usage_message([&] { load_model(dir); });
  EXPECT_EQ(msg, dir + "/model.safetensors: missing tensor 'model.layers.1.self_attn.k_proj.bias'");
}

TEST(Loader, MissingLmHeadWhenUntiedIsAnError) {
  const std::string dir = write_hf_model("nolmhead", arch_config("llama"), [](auto& t) {
    erase_tensor(t, "lm_head.weight");
  });
  EXPECT_NE(usage_message([&] { load_model(dir); }).find("missing tensor 'lm_head.weight'"), std::string::npos);
}

TEST(Loader, MissingPostNormOfGemma2IsAnError) {
  const std::string dir = write_hf_model("nopostnorm", arch_config("gemma2"), [](auto& t) {
    erase_tensor(t, "model.layers.0.post_feedforward_layernorm.weight");
  });
  EXPECT_NE(usage_message([&] { load_model(dir); }).find("'model.layers.0.post_feedforward_layernorm.weight'"),
            std::string::npos);
}

TEST(Loader, WrongShapeIsAnErrorWithBothShapes) {
  const std::string dir = write_hf_model("shape", arch_config("llama"), [](auto& t) {
    erase_tensor(t, "model.layers.0.mlp.up_proj.weight");
    const std::vector<float> v(11 * 8, 0.5f);
    t.push_back(io::make_safetensors_tensor("model.layers.0.mlp.up_proj.weight", "F32", {11, 8}, v));
  });
  EXPECT_EQ(usage_message([&] { load_model(dir); }),
            dir + "/model.safetensors: tensor 'model.layers.0.mlp.up_proj.weight' has shape [11, 8], expected [12, 8]");
}

TEST(Loader, BadPathsAreUsageErrors) {
  EXPECT_NE(usage_message([] { load_model("/nonexistent/model"); }).find("/nonexistent/model"), std::string::npos);
  const std::string dir = fresh_dir("noconfig");
  EXPECT_NE(usage_message([&] { load_model(dir); }).find("missing config.json"), std::string::npos);
}

TEST(Loader, ShardedDirectoryLoads) {
  const json j = arch_config("llama");
  const std::string dir = fresh_dir("sharded");
  std::vector<io::SafetensorsWriteTensor> all = hf_tensors(j);
  std::vector<io::SafetensorsWriteTensor> a(all.begin(), all.begin() + 5), b(all.begin() + 5, all.end());
  io::write_safetensors(dir + "/model-00001-of-00002.safetensors", a);
  io::write_safetensors(dir + "/model-00002-of-00002.safetensors", b);
  json index = {{"metadata", json::object()}, {"weight_map", json::object()}};
  for (const auto& t : a) index["weight_map"][t.name] = "model-00001-of-00002.safetensors";
  for (const auto& t : b) index["weight_map"][t.name] = "model-00002-of-00002.safetensors";
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump();
  std::ofstream(dir + "/config.json") << j.dump();
  const Model m = load_model(dir);
  expect_known_weights(m);
  EXPECT_EQ(m.weights_sha256, sha256_files({dir + "/model-00001-of-00002.safetensors",
                                            dir + "/model-00002-of-00002.safetensors"}));
}

TEST(Loader, GenerationConfigAddsEosIds) {
  json j = arch_config("llama");
  j["eos_token_id"] = 5;
  const std::string dir = write_hf_model("eos", j);
  std::ofstream(dir + "/generation_config.json") << R"({"eos_token_id": [5, 7]})";
  EXPECT_EQ(load_model(dir).config.eos_ids, (std::vector<int>{5, 7}));
}

}  // namespace
}  // namespace kvaudit::model
