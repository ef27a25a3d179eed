// Builders of tiny HF model directories and GGUF files for the model tests: every tensor
// weight_parts() lists, written under its HF or llama.cpp name with distinct known values.
#pragma once
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "model/arch.h"
#include "model/config.h"
#include "model/random_weights.h"
#include "model/weight_parts.h"

namespace kvaudit::model::testing_util {

// 2 layers, d_model 8, 2 heads of 4 (1 KV head), d_ff 12, vocab 16.
inline nlohmann::json tiny_config(const std::string& model_type) {
  return {{"model_type", model_type}, {"num_hidden_layers", 2},   {"hidden_size", 8},
          {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"intermediate_size", 12},
          {"vocab_size", 16},         {"rms_norm_eps", 1e-6},     {"max_position_embeddings", 64},
          {"rope_theta", 10000.0},    {"tie_word_embeddings", false}};
}

// A fresh empty directory under the test temp dir.
inline std::string fresh_dir(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::filesystem::path p = std::filesystem::path(::testing::TempDir()) / "kvaudit_model_tests" /
                                  (std::string(info->test_suite_name()) + "." + info->name() + "." + name);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

// The known value of element i of the tensor with HF name `name` (exact in fp32 and bf16).
inline float known_value(const std::string& name, int64_t i) {
  const float u = hash_uniform(7, std::hash<std::string>{}(name), uint64_t(i));
  return float(int(u * 64)) / 64.0f;  // multiples of 1/64 in (-1, 1): exact in bf16
}

inline std::vector<float> known_values(const std::string& name, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = known_value(name, i);
  return v;
}

inline int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// HF tensors of a config: every part under its HF name (phi3: qkv/gate_up fused as phi3 stores
// them, from the separate parts' known values).
inline std::vector<io::SafetensorsWriteTensor> hf_tensors(const nlohmann::json& config_json,
                                                          const std::string& dtype = "F32") {
  const ModelConfig c = parse_config_json(config_json, "config.json");
  const ArchSpec& a = arch_spec(c.arch);
  Weights w;
  std::vector<io::SafetensorsWriteTensor> out;
  std::vector<float> fused;
  for (const PartRef& p : weight_parts(c, a, w)) {
    const std::string name = hf_tensor_name(p.part, p.layer, a);
    const std::vector<float> v = known_values(name, numel(p.shape));
    const bool qkv = p.part == Part::kWq || p.part == Part::kWk || p.part == Part::kWv;
    const bool gate_up = p.part == Part::kGate || p.part == Part::kUp;
    if ((a.fused_qkv && qkv) || (a.fused_gate_up && gate_up)) {
      fused.insert(fused.end(), v.begin(), v.end());
      if (p.part == Part::kWv)
        out.push_back(io::make_safetensors_tensor(hf_fused_qkv_name(p.layer), dtype,
                                                  {int64_t(fused.size()) / c.d_model, c.d_model}, fused));
      if (p.part == Part::kUp)
        out.push_back(io::make_safetensors_tensor(hf_fused_gate_up_name(p.layer), dtype,
                                                  {int64_t(fused.size()) / c.d_model, c.d_model}, fused));
      if (p.part == Part::kWv || p.part == Part::kUp) fused.clear();
      continue;
    }
    out.push_back(io::make_safetensors_tensor(name, dtype, p.shape, v));
  }
  return out;
}

// Writes config.json and model.safetensors into a fresh directory; `edit` may change the tensors.
inline std::string write_hf_model(
    const std::string& dir_name, const nlohmann::json& config_json,
    const std::function<void(std::vector<io::SafetensorsWriteTensor>&)>& edit = {},
    const std::string& dtype = "F32") {
  const std::string dir = fresh_dir(dir_name);
  std::vector<io::SafetensorsWriteTensor> t = hf_tensors(config_json, dtype);
  if (edit) edit(t);
  io::write_safetensors(dir + "/model.safetensors", t);
  std::ofstream(dir + "/config.json") << config_json.dump(2);
  return dir;
}

inline void erase_tensor(std::vector<io::SafetensorsWriteTensor>& t, const std::string& name) {
  std::erase_if(t, [&](const io::SafetensorsWriteTensor& x) { return x.name == name; });
}

}  // namespace kvaudit::model::testing_util
