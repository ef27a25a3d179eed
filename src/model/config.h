// Model hyperparameters (SPEC.md §1), parsed from a transformers 4.x or 5.x config.json or from
// GGUF metadata. Everything the forward pass needs besides the weights and the ArchSpec.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::model {

enum class RopeType {
  kDefault,   // inv_freq[i] = 1 / theta^(2i/rotary_dim)
  kLinear,    // inv_freq / factor (positions divided by factor)
  kLlama3,    // Llama-3.1 piecewise wavelength scaling (factor, low/high_freq_factor, original max)
  kLongrope,  // Phi-3.5: per-dimension short/long factors and an attention (cos/sin) scale
  kYarn,      // YaRN (factor, beta_fast, beta_slow, original max), cos/sin scaled by attention_factor
  kDynamic,   // dynamic NTK: equal to kDefault while seq_len <= original max (what we evaluate)
};

struct RopeScaling {
  RopeType type = RopeType::kDefault;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;    // llama3
  float high_freq_factor = 4.0f;   // llama3
  int original_max_position = 0;   // llama3, longrope, yarn (0 = config.max_position)
  float attention_factor = 0.0f;   // longrope, yarn: cos/sin scale (0 = derived as in HF)
  float beta_fast = 32.0f;         // yarn
  float beta_slow = 1.0f;          // yarn
  std::vector<float> short_factor; // longrope: [rotary_dim/2]
  std::vector<float> long_factor;  // longrope: [rotary_dim/2], used when seq_len > original max
};

enum class Activation { kSilu, kGeluTanh };

struct ModelConfig {
  std::string arch;  // HF model_type ("llama", "qwen2", ...); GGUF general.architecture mapped to it
  int n_layers = 0;
  int d_model = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // explicit "head_dim" or d_model / n_heads
  int d_ff = 0;
  int n_vocab = 0;
  float norm_eps = 1e-5f;  // rms_norm_eps
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  float partial_rotary_factor = 1.0f;  // rotary_dim = head_dim * factor (rotate-half on the first rotary_dim)
  int max_position = 0;                // max_position_embeddings / <arch>.context_length
  bool tie_embeddings = false;         // lm_head = embed (Weights::lm_head empty)
  bool attention_bias = false;         // q/k/v biases present (qwen2: always)
  Activation act = Activation::kSilu;  // hidden_act / hidden_activation
  float attn_softcap = 0.0f;           // gemma2 attn_logit_softcapping; 0 = none
  float final_softcap = 0.0f;          // gemma2 final_logit_softcapping; 0 = none
  float query_pre_attn_scalar = 0.0f;  // attention scale = 1/sqrt(this); 0 = head_dim
  int sliding_window = 0;              // keys s visible from query t iff t - s < sliding_window; 0 = none
  std::vector<bool> layer_sliding;     // [n_layers]; true = this layer uses sliding_window
  std::vector<int> eos_ids;            // config.json + generation_config.json / tokenizer.ggml.eos_token_id
  int bos_id = -1;                     // -1 = none
  std::string torch_dtype;             // "bfloat16", "float16", "float32" or "" (informational)

  int rotary_dim() const { return int(float(head_dim) * partial_rotary_factor); }
  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  // 1 / sqrt(query_pre_attn_scalar or head_dim), the scale applied to q.k
  float attn_scale() const;
};

// Parses a config.json (transformers 4.x: rope_theta, rope_scaling{type|rope_type}; 5.x:
// rope_parameters{rope_theta, rope_type, ...}, layer_types). `source` names the file in errors.
// Throws UsageError naming the file and key for a missing/invalid key, an inconsistent
// geometry or an unsupported model_type.
ModelConfig parse_config_json(const nlohmann::json& j, const std::string& source);
// Reads and parses `path` (a config.json file).
ModelConfig read_config_json(const std::string& path);
// eos_token_id (int or list) of a generation_config.json; empty when it has none.
std::vector<int> read_generation_eos_ids(const std::string& path);
// Checks the geometry (positive sizes, n_heads % n_kv_heads == 0, layer_sliding size, ...).
void validate_config(const ModelConfig& c, const std::string& source);

}  // namespace kvaudit::model
