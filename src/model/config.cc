// config.json -> ModelConfig for transformers 4.x and 5.x key styles (SPEC.md §1).
#include "model/config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_keys.h"
#include "model/arch.h"

namespace kvaudit::model {

using nlohmann::json;

float ModelConfig::attn_scale() const {
  const float s = query_pre_attn_scalar > 0 ? query_pre_attn_scalar : float(head_dim);
  return 1.0f / std::sqrt(s);
}

namespace {

// Defaults of the transformers config classes for keys PretrainedConfig also defines: such a key
// is omitted from a saved config.json when it equals both defaults (tie_word_embeddings of gemma2),
// and hand-written configs rely on the class defaults for the others.
struct ClassDefaults {
  bool tie_embeddings;
  float norm_eps;
};

ClassDefaults class_defaults(const std::string& model_type) {
  if (model_type == "gemma2") return {true, 1e-6f};
  if (model_type == "phi3" || model_type == "olmo2") return {false, 1e-5f};
  return {false, 1e-6f};  // llama, mistral, qwen2, qwen3
}

// A present, non-null key.
const json* find(const json& j, const std::string& key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

int get_int(const json& j, const std::string& key, const std::string& source) {
  const json* v = find(j, key);
  if (!v) usage_error("{}: missing key '{}'", source, key);
  if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > (int64_t(1) << 31) - 1)
    usage_error("{}: key '{}' must be a non-negative integer, got {}", source, key, v->dump());
  return v->get<int>();
}

int get_int_or(const json& j, const std::string& key, int def, const std::string& source) {
  return find(j, key) ? get_int(j, key, source) : def;
}

float get_float_or(const json& j, const std::string& key, float def, const std::string& source) {
  const json* v = find(j, key);
  if (!v) return def;
  if (!v->is_number()) usage_error("{}: key '{}' must be a number, got {}", source, key, v->dump());
  return v->get<float>();
}

bool get_bool_or(const json& j, const std::string& key, bool def, const std::string& source) {
  const json* v = find(j, key);
  if (!v) return def;
  if (!v->is_boolean()) usage_error("{}: key '{}' must be true or false, got {}", source, key, v->dump());
  return v->get<bool>();
}

std::string get_string_or(const json& j, const std::string& key, const std::string& def,
                          const std::string& source) {
  const json* v = find(j, key);
  if (!v) return def;
  if (!v->is_string()) usage_error("{}: key '{}' must be a string, got {}", source, key, v->dump());
  return v->get<std::string>();
}

std::vector<float> get_float_array(const json& j, const std::string& key, const std::string& source) {
  const json* v = find(j, key);
  if (!v) usage_error("{}: missing key '{}'", source, key);
  if (!v->is_array()) usage_error("{}: key '{}' must be an array of numbers", source, key);
  std::vector<float> out;
  for (const json& x : *v) {
    if (!x.is_number()) usage_error("{}: key '{}' must be an array of numbers", source, key);
    out.push_back(x.get<float>());
  }
  return out;
}

Activation parse_activation(const std::string& name, const std::string& source) {
  if (name == "silu" || name == "swish") return Activation::kSilu;
  if (name == "gelu_pytorch_tanh" || name == "gelu_tanh" || name == "gelu_new")
    return Activation::kGeluTanh;
  usage_error("{}: unsupported activation '{}' (supported: silu, gelu_pytorch_tanh)", source, name);
}

// Token ids as an int, a list of ints or null.
void append_ids(const json& j, const std::string& key, std::vector<int>& out, const std::string& source) {
  const json* v = find(j, key);
  if (!v) return;
  auto add = [&](const json& x) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0)
      usage_error("{}: key '{}' must hold non-negative token ids, got {}", source, key, v->dump());
    const int id = x.get<int>();
    for (int e : out)
      if (e == id) return;
    out.push_back(id);
  };
  if (v->is_array()) {
    for (const json& x : *v) add(x);
  } else {
    add(*v);
  }
}

RopeType parse_rope_type(const std::string& name, const std::string& source) {
  if (name == "default" || name == "none" || name.empty()) return RopeType::kDefault;
  if (name == "linear") return RopeType::kLinear;
  if (name == "llama3") return RopeType::kLlama3;
  if (name == "longrope" || name == "su") return RopeType::kLongrope;  // phi3 4.x renamed su -> longrope
  if (name == "yarn") return RopeType::kYarn;
  if (name == "dynamic") return RopeType::kDynamic;
  usage_error("{}: unsupported rope type '{}' (supported: default, linear, llama3, longrope, yarn, dynamic)",
              source, name);
}

// Fills rope_theta / rope_scaling from a 4.x rope_scaling object or a 5.x rope_parameters object
// (which also carries rope_theta). `top` is the whole config (original_max_position_embeddings
// of phi3 lives there).
void parse_rope(const json& top, const json* params, ModelConfig& c, const std::string& source) {
  RopeScaling& r = c.rope_scaling;
  // phi3 keeps original_max_position_embeddings at the top level (4.x and 5.x).
  r.original_max_position = get_int_or(top, "original_max_position_embeddings", 0, source);
  if (!params) return;
  if (!params->is_object()) usage_error("{}: rope parameters must be an object, got {}", source, params->dump());
  c.rope_theta = get_float_or(*params, "rope_theta", c.rope_theta, source);
  // 5.x moves partial_rotary_factor into rope_parameters.
  c.partial_rotary_factor = get_float_or(*params, "partial_rotary_factor", c.partial_rotary_factor, source);
  std::string type = get_string_or(*params, "rope_type", "", source);
  if (type.empty()) type = get_string_or(*params, "type", "default", source);
  r.type = parse_rope_type(type, source);
  r.factor = get_float_or(*params, "factor", 1.0f, source);
  r.original_max_position = get_int_or(*params, "original_max_position_embeddings", r.original_max_position, source);
  r.attention_factor = get_float_or(*params, "attention_factor", 0.0f, source);
  switch (r.type) {
    case RopeType::kLlama3:
      r.low_freq_factor = get_float_or(*params, "low_freq_factor", 1.0f, source);
      r.high_freq_factor = get_float_or(*params, "high_freq_factor", 4.0f, source);
      if (r.original_max_position == 0)
        usage_error("{}: llama3 rope scaling needs original_max_position_embeddings", source);
      break;
    case RopeType::kLongrope:
      r.short_factor = get_float_array(*params, "short_factor", source);
      r.long_factor = get_float_array(*params, "long_factor", source);
      break;
    case RopeType::kYarn:
      r.beta_fast = get_float_or(*params, "beta_fast", 32.0f, source);
      r.beta_slow = get_float_or(*params, "beta_slow", 1.0f, source);
      if (find(*params, "mscale") || find(*params, "mscale_all_dim"))
        usage_error("{}: yarn mscale / mscale_all_dim are not supported", source);
      break;
    default:
      break;
  }
}

// The per-layer sliding flags when the config has no layer_types (transformers 4.x).
std::vector<bool> default_layer_sliding(const json& j, const std::string& model_type, int n_layers,
                                        int window, const std::string& source) {
  std::vector<bool> s(size_t(n_layers), false);
  if (window <= 0) return s;
  if (arch_spec(model_type).sliding_alternating) {
    // Gemma2DecoderLayer: is_sliding = not bool(layer_idx % 2)
    for (int l = 0; l < n_layers; l += 2) s[size_t(l)] = true;
  } else if (model_type == "qwen2" || model_type == "qwen3") {
    // Qwen2Attention: sliding only with use_sliding_window, from layer max_window_layers on.
    if (get_bool_or(j, "use_sliding_window", false, source)) {
      const int first = get_int_or(j, "max_window_layers", 0, source);
      for (int l = first; l < n_layers; ++l) s[size_t(l)] = true;
    }
  } else if (model_type == "mistral" || model_type == "phi3") {
    s.assign(size_t(n_layers), true);  // sliding_window applies to every layer
  }
  return s;
}

}  // namespace

ModelConfig parse_config_json(const json& j, const std::string& source) {
  if (!j.is_object()) usage_error("{}: expected a JSON object", source);
  ModelConfig c;
  const json* mt = find(j, "model_type");
  if (!mt || !mt->is_string()) usage_error("{}: missing key 'model_type'", source);
  c.arch = mt->get<std::string>();
  const ArchSpec& spec = arch_spec(c.arch);  // throws for unsupported architectures
  const ClassDefaults defs = class_defaults(c.arch);

  c.n_layers = get_int(j, "num_hidden_layers", source);
  c.d_model = get_int(j, "hidden_size", source);
  c.n_heads = get_int(j, "num_attention_heads", source);
  c.n_kv_heads = get_int_or(j, "num_key_value_heads", c.n_heads, source);
  if (c.n_heads <= 0) usage_error("{}: num_attention_heads must be positive", source);
  if (!find(j, "head_dim") && c.d_model % c.n_heads != 0)
    usage_error("{}: hidden_size ({}) is not a multiple of num_attention_heads ({}) and head_dim is not set",
                source, c.d_model, c.n_heads);
  c.head_dim = get_int_or(j, "head_dim", c.d_model / c.n_heads, source);
  c.d_ff = get_int(j, "intermediate_size", source);
  c.n_vocab = get_int(j, "vocab_size", source);
  c.norm_eps = get_float_or(j, "rms_norm_eps", defs.norm_eps, source);
  c.max_position = get_int_or(j, "max_position_embeddings", 0, source);
  c.tie_embeddings = get_bool_or(j, "tie_word_embeddings", defs.tie_embeddings, source);
  // transformers' attention_bias puts a bias on o_proj too (Llama, Gemma2, OLMo2 attention), and
  // mlp_bias on gate/up/down: the forward pass has neither, so such a model is refused rather than
  // run with its biases dropped.
  if (!spec.qkv_bias && get_bool_or(j, "attention_bias", false, source))
    usage_error("{}: attention_bias: true ({} puts a bias on q, k, v and o_proj) is not supported: kvaudit's {} "
                "forward pass has no o_proj bias",
                source, c.arch, c.arch);
  if (get_bool_or(j, "mlp_bias", false, source))
    usage_error("{}: mlp_bias: true is not supported: kvaudit's forward pass has no bias on gate/up/down", source);
  c.attention_bias = spec.qkv_bias;
  c.torch_dtype = get_string_or(j, "torch_dtype", get_string_or(j, "dtype", "", source), source);

  // Gemma2MLP reads hidden_activation; the others hidden_act.
  std::string act = get_string_or(j, "hidden_activation", "", source);
  if (act.empty()) act = get_string_or(j, "hidden_act", "", source);
  c.act = act.empty() ? spec.default_act : parse_activation(act, source);

  if (spec.softcaps) {
    c.attn_softcap = get_float_or(j, "attn_logit_softcapping", 0.0f, source);
    c.final_softcap = get_float_or(j, "final_logit_softcapping", 0.0f, source);
    c.query_pre_attn_scalar = get_float_or(j, "query_pre_attn_scalar", 0.0f, source);
  }

  // RoPE: 4.x top-level rope_theta + rope_scaling; 5.x rope_parameters (possibly per layer type).
  c.rope_theta = get_float_or(j, "rope_theta", 10000.0f, source);
  c.partial_rotary_factor = get_float_or(j, "partial_rotary_factor", 1.0f, source);
  if (const json* rp = find(j, "rope_parameters")) {
    const json* full = rp->is_object() ? find(*rp, "full_attention") : nullptr;
    if (full && full->is_object()) {
      const json* sliding = find(*rp, "sliding_attention");
      if (sliding && *sliding != *full)
        usage_error("{}: rope_parameters differ between layer types: unsupported", source);
      parse_rope(j, full, c, source);
    } else {
      parse_rope(j, rp, c, source);
    }
  } else {
    parse_rope(j, find(j, "rope_scaling"), c, source);
  }

  // Sliding window: 5.x layer_types, else the 4.x per-architecture rule.
  c.sliding_window = get_int_or(j, "sliding_window", 0, source);
  if (const json* lt = find(j, "layer_types")) {
    if (!lt->is_array() || lt->size() != size_t(c.n_layers))
      usage_error("{}: layer_types must list {} entries (num_hidden_layers)", source, c.n_layers);
    for (const json& t : *lt) {
      const std::string name = t.is_string() ? t.get<std::string>() : t.dump();
      if (name == "sliding_attention") {
        c.layer_sliding.push_back(true);
      } else if (name == "full_attention") {
        c.layer_sliding.push_back(false);
      } else {
        usage_error("{}: unsupported layer type '{}' in layer_types", source, name);
      }
    }
  } else {
    c.layer_sliding = default_layer_sliding(j, c.arch, c.n_layers, c.sliding_window, source);
  }
  bool any_sliding = false;
  for (bool s : c.layer_sliding) any_sliding = any_sliding || s;
  if (any_sliding && c.sliding_window <= 0)
    usage_error("{}: layer_types has sliding layers but sliding_window is not set", source);
  if (!any_sliding) c.sliding_window = 0;  // one rule for the engine: window 0 = no layer slides

  append_ids(j, "eos_token_id", c.eos_ids, source);
  if (const json* b = find(j, "bos_token_id")) {
    if (!b->is_number_integer()) usage_error("{}: key 'bos_token_id' must be an integer", source);
    c.bos_id = b->get<int>();
  }
  validate_config(c, source);
  return c;
}

namespace {

json read_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) usage_error("{}: cannot open file", path);
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) usage_error("{}: not valid JSON", path);
  if (const auto key = first_duplicate_key(ss.str())) usage_error("{}: the key '{}' is stated twice", path, *key);
  return j;
}

}  // namespace

ModelConfig read_config_json(const std::string& path) { return parse_config_json(read_json_file(path), path); }

std::vector<int> read_generation_eos_ids(const std::string& path) {
  const json j = read_json_file(path);
  std::vector<int> ids;
  if (j.is_object()) append_ids(j, "eos_token_id", ids, path);
  return ids;
}

void validate_config(const ModelConfig& c, const std::string& source) {
  auto positive = [&](int v, const char* key) {
    if (v <= 0) usage_error("{}: {} must be positive, got {}", source, key, v);
  };
  positive(c.n_layers, "num_hidden_layers");
  positive(c.d_model, "hidden_size");
  positive(c.n_heads, "num_attention_heads");
  positive(c.n_kv_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  positive(c.d_ff, "intermediate_size");
  positive(c.n_vocab, "vocab_size");
  if (c.n_heads % c.n_kv_heads != 0)
    usage_error("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", source,
                c.n_heads, c.n_kv_heads);
  if (!(c.norm_eps > 0) || !std::isfinite(c.norm_eps))
    usage_error("{}: rms_norm_eps must be positive, got {}", source, c.norm_eps);
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta))
    usage_error("{}: rope_theta must be positive, got {}", source, c.rope_theta);
  if (!(c.partial_rotary_factor > 0 && c.partial_rotary_factor <= 1))
    usage_error("{}: partial_rotary_factor must be in (0, 1], got {}", source, c.partial_rotary_factor);
  const int rd = c.rotary_dim();
  if (rd <= 0 || rd % 2 != 0)
    usage_error("{}: rotary dimension head_dim * partial_rotary_factor = {} must be even and positive",
                source, rd);
  if (c.layer_sliding.size() != size_t(c.n_layers))
    usage_error("{}: {} per-layer sliding flags for {} layers", source, c.layer_sliding.size(), c.n_layers);
  if (c.sliding_window < 0) usage_error("{}: sliding_window must be non-negative", source);
  const RopeScaling& r = c.rope_scaling;
  if (!(r.factor > 0)) usage_error("{}: rope scaling factor must be positive, got {}", source, r.factor);
  if (r.type == RopeType::kLongrope &&
      (r.short_factor.size() != size_t(rd / 2) || r.long_factor.size() != size_t(rd / 2)))
    usage_error("{}: longrope short_factor/long_factor need {} entries (rotary_dim / 2), got {} and {}",
                source, rd / 2, r.short_factor.size(), r.long_factor.size());
  if (r.type == RopeType::kLlama3 && !(r.high_freq_factor > r.low_freq_factor))
    usage_error("{}: llama3 rope scaling needs high_freq_factor > low_freq_factor", source);
  if (c.attn_softcap < 0 || c.final_softcap < 0 || c.query_pre_attn_scalar < 0)
    usage_error("{}: soft-caps and query_pre_attn_scalar must be non-negative", source);
}

}  // namespace kvaudit::model
