// --random-weights (SPEC.md §1): real shapes from config.json alone, deterministic per seed.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/model.h"
#include "model/random_gguf.h"
#include "model/random_weights.h"
#include "model/weight_parts.h"
#include "tiny_model.h"

namespace kvaudit::model {
namespace {

using namespace testing_util;

std::string config_only_dir(const std::string& arch) {
  const std::string dir = fresh_dir(arch);
  nlohmann::json j = tiny_config(arch);
  j["d_model_unused"] = 0;
  std::ofstream(dir + "/config.json") << j.dump();
  return dir;  // no safetensors: random weights must not need any
}

TEST(RandomWeights, RealShapesWithoutWeightFiles) {
  LoadOptions opt;
  opt.random_weights = true;
  opt.seed = 3;
  const Model m = load_model(config_only_dir("qwen2"), opt);
  EXPECT_EQ(m.weights_dtype, "random");
  EXPECT_EQ(m.weights_sha256, "random:3");
  EXPECT_EQ(m.weights.embed.size(), 16u * 8u);
  EXPECT_EQ(m.weights.lm_head.size(), 16u * 8u);
  ASSERT_EQ(m.weights.layers.size(), 2u);
  EXPECT_EQ(m.weights.layers[1].wk.size(), 4u * 8u);
  EXPECT_EQ(m.weights.layers[1].bv.size(), 4u);
  EXPECT_EQ(m.weights.layers[1].w_down.size(), 8u * 12u);
  // 2*16*8 (embed, lm_head) + 8 (final norm) + 2 layers * (8+64+32+32+64+8+4+4+8+96*3)
  EXPECT_EQ(m.n_params, 2 * 16 * 8 + 8 + 2 * (8 + 64 + 32 + 32 + 64 + 8 + 4 + 4 + 8 + 96 * 3));
}

TEST(RandomWeights, DeterministicPerSeed) {
  const std::string dir = config_only_dir("llama");
  LoadOptions opt;
  opt.random_weights = true;
  opt.seed = 1;
  const Model a = load_model(dir, opt), b = load_model(dir, opt);
  EXPECT_EQ(a.weights.layers[1].wq.to_f32(), b.weights.layers[1].wq.to_f32());
  EXPECT_EQ(a.weights.embed.to_f32(), b.weights.embed.to_f32());
  opt.seed = 2;
  const Model c = load_model(dir, opt);
  EXPECT_NE(a.weights.layers[1].wq.to_f32(), c.weights.layers[1].wq.to_f32());
  // Different tensors of one model get different streams.
  EXPECT_NE(a.weights.layers[0].wq.to_f32(), a.weights.layers[1].wq.to_f32());
  // A config.json path works as well as its directory.
  opt.seed = 1;
  EXPECT_EQ(load_model(dir + "/config.json", opt).weights.layers[1].wq.to_f32(), a.weights.layers[1].wq.to_f32());
}

// The parts are filled on many threads: each is still its own stream's values (random_values),
// the same as filled one after another.
TEST(RandomWeights, EveryPartHoldsItsOwnStream) {
  LoadOptions opt;
  opt.random_weights = true;
  opt.seed = 5;
  Model m = load_model(config_only_dir("qwen2"), opt);
  for (const PartRef& p : weight_parts(m.config, m.arch, m.weights)) {
    SCOPED_TRACE(std::string(part_label(p.part)) + " of layer " + std::to_string(p.layer));
    const std::vector<float> want = random_values(p, m.arch, opt.seed);
    EXPECT_EQ(p.is_matrix() ? p.mat->to_f32() : *p.dst, want);
  }
}

TEST(RandomWeights, Scales) {
  LoadOptions opt;
  opt.random_weights = true;
  const Model m = load_model(config_only_dir("llama"), opt);
  const float bound = 1.0f / std::sqrt(8.0f);  // fan_in = d_model
  for (float x : m.weights.layers[0].wq.to_f32()) EXPECT_LE(std::abs(x), bound);
  for (float x : m.weights.layers[0].attn_norm) EXPECT_NEAR(x, 1.0f, 0.1f);
  const Model g = load_model(config_only_dir("gemma2"), opt);
  for (float x : g.weights.layers[0].post_ffn_norm) EXPECT_NEAR(x, 0.0f, 0.1f);  // (1 + w) norms
}

TEST(RandomWeights, HashUniformRangeAndMean) {
  double sum = 0;
  constexpr int kN = 100000;
  for (int i = 0; i < kN; ++i) {
    const float u = hash_uniform(9, 1, uint64_t(i));
    ASSERT_GE(u, -1.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / kN, 0.0, 0.01);  // 4.4 standard errors of the mean of U(-1,1) (sd 0.577/sqrt(1e5))
}

TEST(RandomWeights, GgufIsRejected) {
  LoadOptions opt;
  opt.random_weights = true;
  EXPECT_THROW(load_model("x.gguf", opt), UsageError);
}

}  // namespace
}  // namespace kvaudit::model

namespace kvaudit::model {
namespace {

// --random-weights --weights-type (issue 14): matrices stored as the type in a temporary GGUF that
// is mapped and unlinked; deterministic per seed; widths that are not whole blocks fall back to F16.
TEST(RandomTypedWeights, StoredTypeMappedAndDeterministic) {
  const std::string dir = testing_util::fresh_dir("typed");
  nlohmann::json j = testing_util::tiny_config("llama");
  j["hidden_size"] = 64;
  j["intermediate_size"] = 80;  // w_down's width: not a multiple of 32 -> F16
  std::ofstream(dir + "/config.json") << j.dump();
  LoadOptions opt;
  opt.random_weights = true;
  opt.random_type = "q4_0";
  opt.seed = 5;
  const Model a = load_model(dir, opt), b = load_model(dir, opt);
  EXPECT_EQ(a.weights_dtype, "random q4_0");
  EXPECT_EQ(a.weights.layers[0].wq.type(), io::GgmlType::Q4_0);
  EXPECT_EQ(a.weights.layers[0].w_down.type(), io::GgmlType::F16);
  EXPECT_EQ(a.weights.layers[1].wq.to_f32(), b.weights.layers[1].wq.to_f32());
  EXPECT_EQ(a.weights.final_norm, b.weights.final_norm);
  // Nothing left in the temp directory: the file was unlinked once mapped.
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path()))
    EXPECT_EQ(e.path().filename().string().rfind("kvaudit_random_" + std::to_string(getpid()), 0), std::string::npos);
  // q4_k_m: the output matrix is Q6_K; an unknown type names itself.
  EXPECT_EQ(random_matrix_type("q4_k_m", Part::kLmHead, -1, 32, 4096), io::GgmlType::Q6_K);
  EXPECT_EQ(random_matrix_type("q4_k_m", Part::kWq, 5, 32, 4096), io::GgmlType::Q4_K);
  EXPECT_EQ(random_matrix_type("q4_k_m", Part::kDown, 0, 32, 14336), io::GgmlType::Q6_K);
  // expand_f32 (bench --fp32-weights): the same values, decoded to fp32 at load.
  LoadOptions wide = opt;
  wide.expand_f32 = true;
  const Model c = load_model(dir, wide);
  EXPECT_EQ(c.weights.layers[0].wq.type(), io::GgmlType::F32);
  EXPECT_EQ(c.weights.layers[1].wq.to_f32(), a.weights.layers[1].wq.to_f32());
  opt.random_type = "q9_9";
  EXPECT_THROW(load_model(dir, opt), UsageError);
}

}  // namespace
}  // namespace kvaudit::model
