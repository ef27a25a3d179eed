// GGUF models: config from metadata, llama.cpp tensor names, the Q/K row un-permutation of llama
// models, gemma2's stored (1 + w) norms, and errors naming the file and tensor/key (SPEC.md §1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>

#include "core/error.h"
#include "io/gguf.h"
#include "model/gguf_model.h"
#include "model/model.h"
#include "model/weight_check.h"
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

TEST(GgufUnpermute, OneHeadOfFourRows) {
  // gguf row 2i + j holds hf row j*D/2 + i: gguf rows (0,1,2,3) = hf rows (0,2,1,3).
  std::vector<float> w = {10, 11, 12, 13};
  unpermute_gguf_qk_rows(w, 1, 1);
  EXPECT_EQ(w, (std::vector<float>{10, 12, 11, 13}));
}

TEST(GgufUnpermute, OneHeadOfSixRows) {
  // gguf rows (0..5) = hf rows (0,3,1,4,2,5), so hf = gguf rows (0,2,4,1,3,5).
  std::vector<float> w = {0, 1, 2, 3, 4, 5};
  unpermute_gguf_qk_rows(w, 1, 1);
  EXPECT_EQ(w, (std::vector<float>{0, 2, 4, 1, 3, 5}));
}

TEST(GgufUnpermute, TwoHeadsRowsOfTwoColumns) {
  // Each head is permuted on its own; a row's columns move together.
  std::vector<float> w = {0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5,  // head 0, rows 0..3
                          4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5};  // head 1, rows 4..7
  unpermute_gguf_qk_rows(w, 2, 2);
  EXPECT_EQ(w, (std::vector<float>{0, 0.5, 2, 2.5, 1, 1.5, 3, 3.5, 4, 4.5, 6, 6.5, 5, 5.5, 7, 7.5}));
}

TEST(GgufUnpermute, RejectsSizesThatDoNotSplit) {
  std::vector<float> w(6);
  EXPECT_THROW(unpermute_gguf_qk_rows(w, 4, 1), std::runtime_error);
}

// llama.cpp's convert_hf_to_gguf permute: reshape(n_head, 2, D/2, cols).swapaxes(1, 2).
std::vector<float> converter_permute(const std::vector<float>& hf, int n_head, int64_t cols) {
  const int64_t D = int64_t(hf.size()) / cols / n_head;
  std::vector<float> g(hf.size());
  for (int h = 0; h < n_head; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < D / 2; ++i)
        for (int64_t c = 0; c < cols; ++c)
          g[size_t((h * D + 2 * i + j) * cols + c)] = hf[size_t((h * D + j * D / 2 + i) * cols + c)];
  return g;
}

// A GGUF as llama.cpp's converter writes `arch_json` (tiny_config shape): metadata, every part
// under its llama.cpp name (F32, ne = reversed shape), llama Q/K rows permuted.
// `edit` may change a tensor's values (by its llama.cpp name) before they are written.
io::GgufWriter tiny_gguf(const std::string& gguf_arch, const json& j, bool permute_qk,
                         const std::function<void(const std::string&, std::vector<float>&)>& edit = {}) {
  const ModelConfig c = parse_config_json(j, "config.json");
  const ArchSpec& a = arch_spec(c.arch);
  io::GgufWriter w;
  w.set("general.architecture", gguf_arch);
  const std::string p = gguf_arch + ".";
  w.set(p + "block_count", c.n_layers);
  w.set(p + "embedding_length", c.d_model);
  w.set(p + "feed_forward_length", c.d_ff);
  w.set(p + "attention.head_count", c.n_heads);
  w.set(p + "attention.head_count_kv", c.n_kv_heads);
  w.set(p + "attention.layer_norm_rms_epsilon", c.norm_eps);
  w.set(p + "rope.freq_base", c.rope_theta);
  w.set(p + "context_length", c.max_position);
  w.set("tokenizer.ggml.eos_token_id", 2);
  w.set("tokenizer.ggml.bos_token_id", 1);
  Weights ws;
  for (const PartRef& part : weight_parts(c, a, ws)) {
    std::vector<float> v = known_values(hf_tensor_name(part.part, part.layer, a), numel(part.shape));
    if (permute_qk && (part.part == Part::kWq || part.part == Part::kBq))
      v = converter_permute(v, c.n_heads, part.shape.size() == 2 ? part.shape[1] : 1);
    if (permute_qk && (part.part == Part::kWk || part.part == Part::kBk))
      v = converter_permute(v, c.n_kv_heads, part.shape.size() == 2 ? part.shape[1] : 1);
    if (a.gguf_norms_plus_one && is_norm(part.part))
      for (float& x : v) x += 1.0f;
    std::vector<int64_t> ne(part.shape.rbegin(), part.shape.rend());
    if (edit) edit(gguf_tensor_name(part.part, part.layer), v);
    w.add_tensor_f32(gguf_tensor_name(part.part, part.layer), io::GgmlType::F32, ne, v);
  }
  return w;
}

std::string write_gguf(const io::GgufWriter& w, const std::string& name) {
  const std::string path = fresh_dir(name) + "/model.gguf";
  w.write(path);
  return path;
}

// Every slot equals the HF tensor's known values (the file held them permuted / plus one).
void expect_hf_values(const Model& m) {
  Weights loaded = m.weights;
  for (const PartRef& p : weight_parts(m.config, m.arch, loaded)) {
    const std::string name = hf_tensor_name(p.part, p.layer, arch_spec(m.config.arch));
    std::vector<float> want = known_values(name, numel(p.shape));
    if (arch_spec(m.config.arch).gguf_norms_plus_one && is_norm(p.part))
      for (float& x : want) x += 1.0f;  // kept as stored; m.arch.norm is then plain RMS
    EXPECT_EQ(p.is_matrix() ? p.mat->to_f32() : *p.dst, want) << name;
  }
}

TEST(Gguf, LlamaConfigNamesAndUnpermutedQk) {
  json j = tiny_config("llama");
  j["head_dim"] = 4;
  const std::string path = write_gguf(tiny_gguf("llama", j, true), "llama");
  const Model m = load_model(path);
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.d_model, 8);
  EXPECT_EQ(c.n_heads, 2);
  EXPECT_EQ(c.n_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.d_ff, 12);
  EXPECT_EQ(c.n_vocab, 16);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_EQ(c.max_position, 64);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.eos_ids, std::vector<int>{2});
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(m.weights_dtype, "F32");
  EXPECT_EQ(m.weights_sha256.size(), 64u);
  expect_hf_values(m);
}

TEST(Gguf, ANonFiniteWeightIsRefusedNamingTheTensor) {
  const auto message = [](const std::string& tensor, size_t at, float value) {
    const std::string path = write_gguf(tiny_gguf("llama", tiny_config("llama"), true,
                                                  [&](const std::string& name, std::vector<float>& v) {
                                                    if (name == tensor) v.at(at) = value;
                                                  }),
                                        "nonfinite");
    try {
      load_model(path);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  // Row 5 of the file's attn_q (its rows are 8 wide): reported as the file orders them.
  const std::string q = message("blk.1.attn_q.weight", 5 * 8 + 3, NAN);
  EXPECT_NE(q.find("/model.gguf: tensor 'blk.1.attn_q.weight' (row 5) holds a NaN or an infinity"), std::string::npos) << q;
  EXPECT_NE(message("blk.0.ffn_norm.weight", 2, INFINITY).find("tensor 'blk.0.ffn_norm.weight' holds a NaN or an infinity"),
            std::string::npos);
  EXPECT_EQ(message("blk.0.ffn_norm.weight", 2, 1e30f), "loaded");
}

TEST(Gguf, QuantizedBlocksAreCheckedByTheirScales) {
  // Two Q4_1 rows of 32: the second's m (offset 2) is an fp16 infinity.
  std::vector<uint8_t> rows(2 * sizeof(io::BlockQ4_1), 0);
  const uint16_t inf16 = 0x7c00, one16 = 0x3c00;
  std::memcpy(rows.data(), &one16, 2);
  std::memcpy(rows.data() + sizeof(io::BlockQ4_1) + 2, &inf16, 2);
  const json j = tiny_config("llama");
  ModelConfig c = parse_config_json(j, "config.json");
  const ArchSpec& a = arch_spec(c.arch);
  Weights w;
  for (const PartRef& p : weight_parts(c, a, w)) {
    if (p.is_matrix()) *p.mat = WeightMatrix::f32(std::vector<float>(size_t(numel(p.shape)), 0.5f), p.shape[0], p.shape[1]);
    else p.dst->assign(size_t(numel(p.shape)), 1.0f);
  }
  const TensorNames names{gguf_tensor_name, gguf_fused_qkv_name, gguf_fused_gate_up_name};
  EXPECT_EQ(first_non_finite_tensor(c, a, w, names), std::nullopt);
  w.layers[0].wo = WeightMatrix::view(io::GgmlType::Q4_1, 2, 32, rows.data(), nullptr);
  EXPECT_EQ(first_non_finite_tensor(c, a, w, names), "'blk.0.attn_output.weight' (row 1)");
  const uint16_t bf16_nan = 0x7fc0;
  std::vector<uint16_t> bf(3 * 8, 0x3f80);
  bf[2 * 8 + 7] = bf16_nan;
  w.layers[0].wo = WeightMatrix::view(io::GgmlType::BF16, 3, 8, reinterpret_cast<const uint8_t*>(bf.data()), nullptr);
  EXPECT_EQ(first_non_finite_tensor(c, a, w, names), "'blk.0.attn_output.weight' (row 2)");
}

TEST(Gguf, Qwen2IsNotPermutedAndHasBiases) {
  const std::string path = write_gguf(tiny_gguf("qwen2", tiny_config("qwen2"), false), "qwen2");
  const Model m = load_model(path);
  EXPECT_EQ(m.config.arch, "qwen2");
  EXPECT_TRUE(m.config.attention_bias);
  EXPECT_EQ(m.weights.layers[0].bk.size(), 4u);
  expect_hf_values(m);
}

TEST(Gguf, Gemma2NormsHoldOnePlusWeight) {
  json j = tiny_config("gemma2");
  j["head_dim"] = 4;
  j["tie_word_embeddings"] = true;
  io::GgufWriter w = tiny_gguf("gemma2", j, false);
  w.set("gemma2.attn_logit_softcapping", 50.0f);
  w.set("gemma2.final_logit_softcapping", 30.0f);
  w.set("gemma2.attention.sliding_window", 4096);
  const Model m = load_model(write_gguf(w, "gemma2"));
  EXPECT_EQ(m.config.arch, "gemma2");
  EXPECT_EQ(m.arch.norm, NormKind::kRms);  // the converter stored 1 + w
  EXPECT_TRUE(m.config.tie_embeddings);
  EXPECT_FLOAT_EQ(m.config.attn_softcap, 50.0f);
  EXPECT_FLOAT_EQ(m.config.final_softcap, 30.0f);
  EXPECT_EQ(m.config.sliding_window, 4096);
  EXPECT_EQ(m.config.layer_sliding, (std::vector<bool>{true, false}));
  EXPECT_EQ(m.config.act, Activation::kGeluTanh);
  expect_hf_values(m);
}

TEST(Gguf, Llama3RopeFreqsBecomePerDimensionFactors) {
  json j = tiny_config("llama");
  io::GgufWriter w = tiny_gguf("llama", j, true);
  const std::vector<float> factors = {1.0f, 8.0f};  // [rotary_dim/2]
  w.add_tensor_f32("rope_freqs.weight", io::GgmlType::F32, {2}, factors);
  const Model m = load_model(write_gguf(w, "llama3"));
  EXPECT_EQ(m.config.rope_scaling.type, RopeType::kLongrope);
  EXPECT_EQ(m.config.rope_scaling.short_factor, factors);
  EXPECT_EQ(m.config.rope_scaling.long_factor, factors);
  EXPECT_FLOAT_EQ(m.config.rope_scaling.attention_factor, 1.0f);
}

TEST(Gguf, UnsupportedArchitectureNamesTheSupportedOnes) {
  io::GgufWriter w;
  w.set("general.architecture", "gpt2");
  const std::string path = write_gguf(w, "gpt2");
  EXPECT_EQ(usage_message([&] { load_model(path); }),
            path + ": unsupported GGUF architecture 'gpt2' (supported: gemma2, llama, olmo2, phi3, qwen2, qwen3)");
}

TEST(Gguf, MissingMetadataKeyIsNamed) {
  io::GgufWriter bare;
  bare.set("general.architecture", "llama");
  const std::string path = write_gguf(bare, "bare");
  EXPECT_EQ(usage_message([&] { load_model(path); }), path + ": missing metadata key 'llama.block_count'");
}

TEST(Gguf, MissingTensorIsNamed) {
  // A complete file copied without blk.1.ffn_down.weight.
  const std::string src = write_gguf(tiny_gguf("llama", tiny_config("llama"), true), "full");
  io::GgufWriter w;
  auto f = io::GgufFile::open(src);
  for (const auto& [k, v] : f->metadata().items()) w.set(k, v);
  for (const auto& t : f->tensors()) {
    if (t.name == "blk.1.ffn_down.weight") continue;
    w.add_tensor(t.name, t.type, t.ne, std::span<const uint8_t>(t.data, t.nbytes));
  }
  const std::string path = write_gguf(w, "missing");
  EXPECT_EQ(usage_message([&] { load_model(path); }), path + ": missing tensor 'blk.1.ffn_down.weight'");
}

// The converse: tensors the forward pass never reads (a block_count below the file's layers, a part
// kvaudit does not compute) are refused, not ignored.
TEST(Gguf, TensorsTheForwardPassDoesNotUseAreNamed) {
  const std::string src = write_gguf(tiny_gguf("llama", tiny_config("llama"), true), "full2");
  auto f = io::GgufFile::open(src);
  io::GgufWriter fewer, extra;
  for (const auto& [k, v] : f->metadata().items()) {
    fewer.set(k, k == "llama.block_count" ? json(1) : v);
    extra.set(k, v);
  }
  for (const auto& t : f->tensors()) {
    fewer.add_tensor(t.name, t.type, t.ne, std::span<const uint8_t>(t.data, t.nbytes));
    extra.add_tensor(t.name, t.type, t.ne, std::span<const uint8_t>(t.data, t.nbytes));
  }
  extra.add_tensor_f32("blk.0.totally_unknown.weight", io::GgmlType::F32, {2}, std::vector<float>{1.0f, 2.0f});
  const std::string p1 = write_gguf(fewer, "fewer"), p2 = write_gguf(extra, "extra");
  const std::string m1 = usage_message([&] { load_model(p1); });
  EXPECT_NE(m1.find(": 9 tensor(s) that the forward pass of a 1-layer llama does not use (blk.1."), std::string::npos) << m1;
  EXPECT_EQ(usage_message([&] { load_model(p2); }),
            p2 + ": 1 tensor(s) that the forward pass of a 2-layer llama does not use (blk.0.totally_unknown.weight): "
                 "the metadata and the tensors disagree, or the file holds parts kvaudit does not compute");
}

}  // namespace
}  // namespace kvaudit::model
