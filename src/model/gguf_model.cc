#include "model/gguf_model.h"

#include <cmath>
#include <filesystem>
#include <future>
#include <map>

#include <fmt/ranges.h>

#include "core/error.h"
#include "model/memory_check.h"
#include "model/sha256.h"
#include "model/weight_check.h"
#include "model/weight_loader.h"
#include "model/weight_parts.h"

namespace kvaudit::model {

using nlohmann::json;

namespace {

// GGUF general.architecture -> HF model_type (mistral models are converted as "llama").
const std::map<std::string, std::string>& gguf_archs() {
  static const std::map<std::string, std::string> m = {
      {"llama", "llama"}, {"qwen2", "qwen2"},   {"qwen3", "qwen3"},
      {"phi3", "phi3"},   {"gemma2", "gemma2"}, {"olmo2", "olmo2"},
  };
  return m;
}

class Meta {
 public:
  Meta(const io::GgufFile& f, std::string prefix) : f_(f), j_(f.metadata()), prefix_(std::move(prefix)) {}

  const json* find(const std::string& key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  // A per-arch key "<arch>.<suffix>": a number, or an array of equal numbers (per-layer values).
  const json* arch_value(const std::string& suffix) const {
    const std::string key = prefix_ + "." + suffix;
    const json* v = find(key);
    if (v && v->is_array()) {
      if (v->empty()) usage_error("{}: metadata key '{}' is an empty array", f_.path(), key);
      for (const json& x : *v)
        if (x != v->front())
          usage_error("{}: metadata key '{}' differs between layers: unsupported", f_.path(), key);
      return &v->front();
    }
    return v;
  }
  int64_t int_(const std::string& suffix) const {
    const json* v = arch_value(suffix);
    if (!v) usage_error("{}: missing metadata key '{}.{}'", f_.path(), prefix_, suffix);
    if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > (int64_t(1) << 31) - 1)
      usage_error("{}: metadata key '{}.{}' must be a non-negative integer", f_.path(), prefix_, suffix);
    return v->get<int64_t>();
  }
  int64_t int_or(const std::string& suffix, int64_t def) const { return arch_value(suffix) ? int_(suffix) : def; }
  float float_or(const std::string& suffix, float def) const {
    const json* v = arch_value(suffix);
    if (!v) return def;
    if (!v->is_number()) usage_error("{}: metadata key '{}.{}' must be a number", f_.path(), prefix_, suffix);
    return v->get<float>();
  }
  std::string string_or(const std::string& suffix, const std::string& def) const {
    const json* v = arch_value(suffix);
    if (!v) return def;
    if (!v->is_string()) usage_error("{}: metadata key '{}.{}' must be a string", f_.path(), prefix_, suffix);
    return v->get<std::string>();
  }
  // A global token id key (tokenizer.ggml.*), -1 when absent.
  int token_id(const std::string& key) const {
    const json* v = find(key);
    if (!v) return -1;
    if (!v->is_number_integer() || v->get<int64_t>() < 0)
      usage_error("{}: metadata key '{}' must be a token id", f_.path(), key);
    return v->get<int>();
  }

 private:
  const io::GgufFile& f_;
  const json& j_;
  std::string prefix_;
};

std::vector<float> read_vector(const io::GgufFile& f, const std::string& name, int64_t n) {
  std::vector<float> v;
  read_tensor(f, name, {n}, v);
  return v;
}

}  // namespace

std::string model_type_from_gguf_arch(const std::string& gguf_arch, const std::string& source) {
  auto it = gguf_archs().find(gguf_arch);
  if (it == gguf_archs().end()) {
    std::vector<std::string> names;
    for (const auto& [k, v] : gguf_archs()) names.push_back(k);
    usage_error("{}: unsupported GGUF architecture '{}' (supported: {})", source, gguf_arch, fmt::join(names, ", "));
  }
  return it->second;
}

ModelConfig config_from_gguf(const io::GgufFile& f) {
  const std::string& src = f.path();
  const json* ga = f.metadata().contains("general.architecture") ? &f.metadata()["general.architecture"] : nullptr;
  if (!ga || !ga->is_string()) usage_error("{}: missing metadata key 'general.architecture'", src);
  const std::string gguf_arch = ga->get<std::string>();
  ModelConfig c;
  c.arch = model_type_from_gguf_arch(gguf_arch, src);
  const ArchSpec& spec = arch_spec(c.arch);
  const Meta m(f, gguf_arch);

  c.n_layers = int(m.int_("block_count"));
  c.d_model = int(m.int_("embedding_length"));
  c.d_ff = int(m.int_("feed_forward_length"));
  c.n_heads = int(m.int_("attention.head_count"));
  c.n_kv_heads = int(m.int_or("attention.head_count_kv", c.n_heads));
  if (c.n_heads <= 0) usage_error("{}: attention.head_count must be positive", src);
  c.head_dim = int(m.int_or("attention.key_length", c.d_model / c.n_heads));
  if (m.int_or("attention.value_length", c.head_dim) != c.head_dim)
    usage_error("{}: attention.value_length differs from key_length: unsupported", src);
  const int64_t rot = m.int_or("rope.dimension_count", c.head_dim);
  c.partial_rotary_factor = c.head_dim > 0 ? float(rot) / float(c.head_dim) : 1.0f;
  c.norm_eps = m.float_or("attention.layer_norm_rms_epsilon", 1e-5f);
  c.rope_theta = m.float_or("rope.freq_base", 10000.0f);
  c.max_position = int(m.int_or("context_length", 0));
  c.act = spec.default_act;

  const auto embd = f.info("token_embd.weight");
  if (!embd || embd->shape.size() != 2) usage_error("{}: missing tensor 'token_embd.weight'", src);
  c.n_vocab = int(embd->shape[0]);
  c.tie_embeddings = !f.info("output.weight");
  c.attention_bias = spec.qkv_bias || bool(f.info("blk.0.attn_q.bias"));
  // Biases the forward pass has no place for would be dropped, silently changing every logit.
  for (const char* t : {"blk.0.attn_output.bias", "blk.0.ffn_gate.bias", "blk.0.ffn_up.bias", "blk.0.ffn_down.bias"})
    if (f.info(t)) usage_error("{}: tensor '{}': biases on the attention output or the MLP are not supported", src, t);

  // RoPE scaling: metadata for linear / yarn; llama3 and longrope as per-dimension divisors
  // stored as tensors (inv_freq[i] = base^(-2i/d) / factor[i]), the form kLongrope evaluates.
  RopeScaling& r = c.rope_scaling;
  const std::string type = m.string_or("rope.scaling.type", "none");
  r.original_max_position = int(m.int_or("rope.scaling.original_context_length", 0));
  if (type == "linear") {
    r.type = RopeType::kLinear;
    r.factor = m.float_or("rope.scaling.factor", 1.0f);
  } else if (type == "yarn") {
    r.type = RopeType::kYarn;
    r.factor = m.float_or("rope.scaling.factor", 1.0f);
  } else if (type != "none" && type != "longrope" && type != "su") {
    usage_error("{}: unsupported rope scaling type '{}'", src, type);
  }
  const int64_t half = rot / 2;
  if (f.info("rope_freqs.weight")) {
    r.type = RopeType::kLongrope;
    r.short_factor = read_vector(f, "rope_freqs.weight", half);
    r.long_factor = r.short_factor;
    r.attention_factor = 1.0f;
  } else if (f.info("rope_factors_short.weight") || f.info("rope_factors_long.weight")) {
    r.type = RopeType::kLongrope;
    r.short_factor = read_vector(f, "rope_factors_short.weight", half);
    r.long_factor = read_vector(f, "rope_factors_long.weight", half);
    r.attention_factor = m.float_or("rope.scaling.attn_factor", 0.0f);
  }

  if (spec.softcaps) {
    c.attn_softcap = m.float_or("attn_logit_softcapping", 0.0f);
    c.final_softcap = m.float_or("final_logit_softcapping", 0.0f);
    // The converter does not store query_pre_attn_scalar; llama.cpp scales by 1/sqrt(head_dim),
    // except Gemma-2-27B (46 layers) where it is d_model / n_heads (= 144), as transformers.
    if (c.n_layers == 46) c.query_pre_attn_scalar = float(c.d_model / c.n_heads);
  }
  c.layer_sliding.assign(size_t(c.n_layers), false);
  if (spec.sliding_alternating) {
    c.sliding_window = int(m.int_or("attention.sliding_window", 0));
    if (c.sliding_window > 0)
      for (int l = 0; l < c.n_layers; l += 2) c.layer_sliding[size_t(l)] = true;
  }

  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    const int id = m.token_id(key);
    if (id >= 0 && std::find(c.eos_ids.begin(), c.eos_ids.end(), id) == c.eos_ids.end()) c.eos_ids.push_back(id);
  }
  c.bos_id = m.token_id("tokenizer.ggml.bos_token_id");
  validate_config(c, src);
  return c;
}

std::vector<int32_t> gguf_qk_row_order(int64_t n_rows, int n_head) {
  if (n_head <= 0 || n_rows % n_head != 0 || (n_rows / n_head) % 2 != 0)
    runtime_error("gguf_qk_row_order: {} rows do not split into {} heads of an even size", n_rows, n_head);
  const int64_t D = n_rows / n_head;  // rows per head
  std::vector<int32_t> order(static_cast<size_t>(n_rows));
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < D / 2; ++i)
      for (int64_t j = 0; j < 2; ++j) order[size_t(h * D + j * D / 2 + i)] = int32_t(h * D + 2 * i + j);
  return order;
}

void unpermute_gguf_qk_rows(std::span<float> w, int n_head, int64_t n_cols) {
  if (n_head <= 0 || n_cols <= 0 || int64_t(w.size()) % (int64_t(n_head) * n_cols) != 0)
    runtime_error("unpermute_gguf_qk_rows: {} values do not split into {} heads of rows of {}", w.size(), n_head,
                  n_cols);
  const int64_t D = int64_t(w.size()) / n_cols / n_head;  // rows per head
  if (D % 2 != 0) runtime_error("unpermute_gguf_qk_rows: odd head size {}", D);
  std::vector<float> head(size_t(D * n_cols));
  for (int h = 0; h < n_head; ++h) {
    float* base = w.data() + h * D * n_cols;
    std::copy(base, base + D * n_cols, head.begin());
    for (int64_t i = 0; i < D / 2; ++i)
      for (int64_t j = 0; j < 2; ++j)
        std::copy_n(head.begin() + (2 * i + j) * n_cols, n_cols, base + (j * D / 2 + i) * n_cols);
  }
}

Model load_gguf_model(const std::string& path, const LoadOptions& opt) {
  std::shared_ptr<io::GgufFile> f = io::GgufFile::open(path);
  Model model;
  model.path = path;
  model.config = config_from_gguf(*f);
  model.arch = arch_spec(model.config.arch);
  // Before a byte of the weights is allocated or paged in.
  if (opt.expand_f32)
    check_weights_fit(model.config, model.arch, path);
  else
    check_mapped_weights_fit(int64_t(std::filesystem::file_size(path)), path);
  // Hash while converting (both read the same pages); joined on every exit path by the future.
  std::future<std::string> sha;
  if (opt.compute_sha256) sha = std::async(std::launch::async, [path] { return sha256_files({path}); });
  ModelConfig& c = model.config;
  TensorNames names{gguf_tensor_name, gguf_fused_qkv_name, gguf_fused_gate_up_name};
  load_weights(*f, c, model.arch, names, model.weights, {f, opt.expand_f32});
  refuse_non_finite(model, names);  // rows as the file orders them: before the q/k reordering
  if (model.arch.gguf_qk_permuted) {
    for (LayerWeights& L : model.weights.layers) {
      L.wq.reorder_rows(gguf_qk_row_order(L.wq.rows(), c.n_heads));
      L.wk.reorder_rows(gguf_qk_row_order(L.wk.rows(), c.n_kv_heads));
      if (!L.bq.empty()) unpermute_gguf_qk_rows(L.bq, c.n_heads, 1);
      if (!L.bk.empty()) unpermute_gguf_qk_rows(L.bk, c.n_kv_heads, 1);
    }
  }
  // The stored norm weights already hold 1 + w, so the model multiplies by them as they are.
  if (model.arch.gguf_norms_plus_one && model.arch.norm == NormKind::kRmsOnePlusWeight) model.arch.norm = NormKind::kRms;
  model.weights_dtype = f->info("token_embd.weight")->dtype;
  // A tensor the forward pass never read means the metadata and the tensors disagree (a block_count
  // below the file's layers) or the file holds a part kvaudit does not compute: either way the
  // output would be another model's, without a word.
  if (const std::vector<std::string> unused = f->unused_tensors(); !unused.empty()) {
    const std::vector<std::string> shown(unused.begin(), unused.begin() + std::ptrdiff_t(std::min<size_t>(unused.size(), 4)));
    usage_error("{}: {} tensor(s) that the forward pass of a {}-layer {} does not use ({}{}): the metadata and the "
                "tensors disagree, or the file holds parts kvaudit does not compute",
                path, unused.size(), c.n_layers, c.arch, fmt::join(shown, ", "), unused.size() > shown.size() ? ", ..." : "");
  }
  model.n_params = count_params(model.weights);
  if (sha.valid()) model.weights_sha256 = sha.get();
  return model;
}

}  // namespace kvaudit::model
