// config.json parsing: transformers 4.x and 5.x key styles, per-architecture defaults, sliding
// window rules, and errors that name the file and key (SPEC.md §1).
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/config.h"
#include "tiny_model.h"

namespace kvaudit::model {
namespace {

using nlohmann::json;
using testing_util::tiny_config;

// The message of the UsageError `f` throws ("" when it throws nothing).
template <typename F>
std::string usage_message(F f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, Llama4xKeys) {
  // SmolLM2-135M-Instruct's config.json (transformers 4.42).
  const json j = json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 1,
    "eos_token_id": 2, "head_dim": 64, "hidden_act": "silu", "hidden_size": 576,
    "intermediate_size": 1536, "max_position_embeddings": 8192, "model_type": "llama",
    "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
    "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 100000, "tie_word_embeddings": true,
    "torch_dtype": "bfloat16", "transformers_version": "4.42.3", "vocab_size": 49152})");
  const ModelConfig c = parse_config_json(j, "smollm2/config.json");
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.d_model, 576);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.d_ff, 1536);
  EXPECT_EQ(c.n_vocab, 49152);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 100000.0f);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kDefault);
  EXPECT_EQ(c.max_position, 8192);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.act, Activation::kSilu);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.layer_sliding, std::vector<bool>(30, false));
  EXPECT_EQ(c.eos_ids, std::vector<int>{2});
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.rotary_dim(), 64);
  EXPECT_FLOAT_EQ(c.attn_scale(), 0.125f);
}

TEST(Config, Llama31RopeScaling4xAndOldTypeKey) {
  json j = tiny_config("llama");
  j["rope_theta"] = 500000.0;
  j["eos_token_id"] = {128001, 128008, 128009};
  j["rope_scaling"] = {{"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}, {"rope_type", "llama3"}};
  ModelConfig c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.rope_scaling.type, RopeType::kLlama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_scaling.original_max_position, 8192);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  EXPECT_EQ(c.eos_ids, (std::vector<int>{128001, 128008, 128009}));
  // Early 4.x configs spell it "type".
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.rope_scaling.type, RopeType::kLinear);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 2.0f);
}

TEST(Config, Transformers5RopeParametersAndLayerTypes) {
  json j = tiny_config("llama");
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 32.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  j["layer_types"] = {"full_attention", "full_attention"};
  const ModelConfig c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.rope_scaling.type, RopeType::kLlama3);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 32.0f);
  EXPECT_EQ(c.layer_sliding, std::vector<bool>(2, false));
  EXPECT_EQ(c.sliding_window, 0);
}

TEST(Config, Transformers5PerLayerTypeRopeParameters) {
  json j = tiny_config("gemma2");
  j.erase("rope_theta");
  j["sliding_window"] = 4;
  j["layer_types"] = {"full_attention", "sliding_attention"};
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 20000.0}}},
                          {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 20000.0}}}};
  ModelConfig c = parse_config_json(j, "c.json");
  EXPECT_FLOAT_EQ(c.rope_theta, 20000.0f);
  EXPECT_EQ(c.layer_sliding, (std::vector<bool>{false, true}));  // layer_types win over the 4.x rule
  EXPECT_EQ(c.sliding_window, 4);
  j["rope_parameters"]["sliding_attention"]["rope_theta"] = 10000.0;
  EXPECT_NE(usage_message([&] { parse_config_json(j, "c.json"); }).find("differ between layer types"),
            std::string::npos);
}

TEST(Config, Gemma2WithoutLayerTypesSlidesOnEvenLayers) {
  // Gemma-2-2b-it keys (transformers 4.42): tie_word_embeddings omitted (the class default is true).
  json j = tiny_config("gemma2");
  j.erase("tie_word_embeddings");
  j["num_hidden_layers"] = 4;
  j["head_dim"] = 4;
  j["hidden_act"] = "gelu_pytorch_tanh";
  j["hidden_activation"] = "gelu_pytorch_tanh";
  j["attn_logit_softcapping"] = 50.0;
  j["final_logit_softcapping"] = 30.0;
  j["query_pre_attn_scalar"] = 256;
  j["sliding_window"] = 4096;
  const ModelConfig c = parse_config_json(j, "c.json");
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.act, Activation::kGeluTanh);
  EXPECT_FLOAT_EQ(c.attn_softcap, 50.0f);
  EXPECT_FLOAT_EQ(c.final_softcap, 30.0f);
  EXPECT_FLOAT_EQ(c.query_pre_attn_scalar, 256.0f);
  EXPECT_FLOAT_EQ(c.attn_scale(), 1.0f / 16.0f);
  EXPECT_EQ(c.sliding_window, 4096);
  // Gemma2DecoderLayer: is_sliding = not bool(layer_idx % 2).
  EXPECT_EQ(c.layer_sliding, (std::vector<bool>{true, false, true, false}));
}

TEST(Config, Gemma2SoftcapNullMeansNone) {
  json j = tiny_config("gemma2");
  j["attn_logit_softcapping"] = nullptr;
  j["final_logit_softcapping"] = nullptr;
  const ModelConfig c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.attn_softcap, 0.0f);
  EXPECT_EQ(c.final_softcap, 0.0f);
  EXPECT_EQ(c.act, Activation::kGeluTanh);  // gemma2's default activation
}

TEST(Config, Qwen2SlidingOnlyWithUseSlidingWindow) {
  json j = tiny_config("qwen2");
  j["num_hidden_layers"] = 3;
  j["sliding_window"] = 32768;
  j["use_sliding_window"] = false;
  j["max_window_layers"] = 1;
  ModelConfig c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.layer_sliding, std::vector<bool>(3, false));
  EXPECT_TRUE(c.attention_bias);  // qwen2 always has q/k/v biases
  j["use_sliding_window"] = true;
  c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.sliding_window, 32768);
  EXPECT_EQ(c.layer_sliding, (std::vector<bool>{false, true, true}));  // layers >= max_window_layers
}

TEST(Config, MistralSlidingWindowOnEveryLayer) {
  json j = tiny_config("mistral");
  j["sliding_window"] = 4096;
  ModelConfig c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.layer_sliding, std::vector<bool>(2, true));
  EXPECT_EQ(c.sliding_window, 4096);
  j["sliding_window"] = nullptr;  // Mistral-7B-v0.2 and later
  c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.layer_sliding, std::vector<bool>(2, false));
}

TEST(Config, Phi3LongropeAndPartialRotary) {
  json j = tiny_config("phi3");
  j["num_key_value_heads"] = 2;
  j["max_position_embeddings"] = 131072;
  j["original_max_position_embeddings"] = 4096;
  j["rope_scaling"] = {{"type", "longrope"}, {"short_factor", {1.0, 1.5}}, {"long_factor", {2.0, 3.0}}};
  ModelConfig c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.rope_scaling.type, RopeType::kLongrope);
  EXPECT_EQ(c.rope_scaling.short_factor, (std::vector<float>{1.0f, 1.5f}));
  EXPECT_EQ(c.rope_scaling.long_factor, (std::vector<float>{2.0f, 3.0f}));
  EXPECT_EQ(c.rope_scaling.original_max_position, 4096);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  j["partial_rotary_factor"] = 0.5;  // rotary_dim 2 -> one factor per side
  EXPECT_NE(usage_message([&] { parse_config_json(j, "c.json"); }).find("need 1 entries"), std::string::npos);
  j["rope_scaling"] = {{"type", "su"}, {"short_factor", {1.0}}, {"long_factor", {2.0}}};
  c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.rotary_dim(), 2);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kLongrope);
}

TEST(Config, DefaultsForOptionalKeys) {
  json j = tiny_config("olmo2");
  j.erase("num_key_value_heads");
  j.erase("rms_norm_eps");
  j.erase("tie_word_embeddings");
  const ModelConfig c = parse_config_json(j, "c.json");
  EXPECT_EQ(c.n_kv_heads, 2);  // = num_attention_heads
  EXPECT_EQ(c.head_dim, 4);    // hidden_size / num_attention_heads
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_TRUE(c.eos_ids.empty());
  EXPECT_EQ(c.bos_id, -1);
}

TEST(Config, UnsupportedArchitectureNamesTheSupportedOnes) {
  const std::string msg = usage_message([] { parse_config_json(tiny_config("gpt2"), "m/config.json"); });
  EXPECT_NE(msg.find("'gpt2'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gemma2, llama, mistral, olmo2, phi3, qwen2, qwen3"), std::string::npos) << msg;
}

TEST(Config, ErrorsNameFileAndKey) {
  json j = tiny_config("llama");
  j.erase("intermediate_size");
  std::string msg = usage_message([&] { parse_config_json(j, "m/config.json"); });
  EXPECT_EQ(msg, "m/config.json: missing key 'intermediate_size'");

  j = tiny_config("llama");
  j["num_key_value_heads"] = 3;
  msg = usage_message([&] { parse_config_json(j, "m/config.json"); });
  EXPECT_EQ(msg, "m/config.json: num_attention_heads (2) must be a multiple of num_key_value_heads (3)");

  j = tiny_config("llama");
  j["hidden_size"] = 9;
  msg = usage_message([&] { parse_config_json(j, "m/config.json"); });
  EXPECT_EQ(msg, "m/config.json: hidden_size (9) is not a multiple of num_attention_heads (2) and head_dim is not set");

  j = tiny_config("llama");
  j["hidden_size"] = "8";
  msg = usage_message([&] { parse_config_json(j, "m/config.json"); });
  EXPECT_NE(msg.find("'hidden_size' must be a non-negative integer"), std::string::npos) << msg;

  j = tiny_config("llama");
  j["layer_types"] = {"full_attention"};
  msg = usage_message([&] { parse_config_json(j, "m/config.json"); });
  EXPECT_NE(msg.find("layer_types must list 2 entries"), std::string::npos) << msg;

  j = tiny_config("llama");
  j["rope_scaling"] = {{"rope_type", "mrope"}};
  msg = usage_message([&] { parse_config_json(j, "m/config.json"); });
  EXPECT_NE(msg.find("unsupported rope type 'mrope'"), std::string::npos) << msg;

  j = tiny_config("llama");
  j["hidden_act"] = "relu";
  msg = usage_message([&] { parse_config_json(j, "m/config.json"); });
  EXPECT_NE(msg.find("unsupported activation 'relu'"), std::string::npos) << msg;

  EXPECT_NE(usage_message([] { read_config_json("/nonexistent/config.json"); }).find("/nonexistent/config.json"),
            std::string::npos);
}

TEST(Config, GenerationConfigEosIds) {
  const std::string dir = testing_util::fresh_dir("gen");
  std::ofstream(dir + "/generation_config.json") << R"({"eos_token_id": [128001, 128009], "do_sample": true})";
  EXPECT_EQ(read_generation_eos_ids(dir + "/generation_config.json"), (std::vector<int>{128001, 128009}));
}

TEST(Config, RepeatedKeyIsRefused) {  // json keeps the last: one num_hidden_layers would be dropped
  const std::string dir = testing_util::fresh_dir("twice");
  std::string text = tiny_config("llama").dump();
  text.insert(1, R"("num_hidden_layers": 80, )");
  std::ofstream(dir + "/config.json") << text;
  EXPECT_EQ(usage_message([&] { read_config_json(dir + "/config.json"); }),
            dir + "/config.json: the key 'num_hidden_layers' is stated twice");
}

}  // namespace
}  // namespace kvaudit::model
