// The list of weight tensors a (config, arch) needs, independent of file format: each part's
// logical role, layer, expected shape and destination in Weights. The HF and GGUF loaders and
// the random initializer all walk this one list, so "which tensors exist" is decided once.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/arch.h"
#include "model/config.h"
#include "model/weights.h"

namespace kvaudit::model {

enum class Part {
  kEmbed, kFinalNorm, kLmHead,
  kAttnNorm, kWq, kWk, kWv, kWo, kBq, kBk, kBv, kQNorm, kKNorm, kPostAttnNorm,
  kFfnNorm, kGate, kUp, kDown, kPostFfnNorm,
};

struct PartRef {
  Part part;
  int layer;                   // -1 for embed, final_norm, lm_head
  std::vector<int64_t> shape;  // PyTorch order
  std::vector<float>* dst;      // vectors (norms, biases); null for a matrix
  WeightMatrix* mat = nullptr;  // matrices (shape [rows, cols]); null for a vector
  bool is_matrix() const { return mat != nullptr; }
};

// Every tensor the model needs (lm_head only when not tied; biases, q/k norms and post norms only
// when the arch/config has them), in a fixed order: globals, then layer by layer.
std::vector<PartRef> weight_parts(const ModelConfig& c, const ArchSpec& a, Weights& w);
bool is_norm(Part p);
// "wq", "attn_norm", ... for messages.
const char* part_label(Part p);

// Hugging Face tensor names ("model.layers.3.self_attn.q_proj.weight"). Which HF norm is the
// pre-FFN one depends on the arch: llama's post_attention_layernorm normalises the FFN input,
// gemma2's and olmo2's the attention output.
std::string hf_tensor_name(Part p, int layer, const ArchSpec& a);
std::string hf_fused_qkv_name(int layer);      // phi3 self_attn.qkv_proj.weight
std::string hf_fused_gate_up_name(int layer);  // phi3 mlp.gate_up_proj.weight

// llama.cpp tensor names ("blk.3.attn_q.weight").
std::string gguf_tensor_name(Part p, int layer);
std::string gguf_fused_qkv_name(int layer);      // blk.N.attn_qkv.weight
std::string gguf_fused_gate_up_name(int layer);  // phi3: blk.N.ffn_up.weight holding [2*d_ff, d_model]

// Total elements of the weights (lm_head counted only when untied).
int64_t count_params(const Weights& w);

}  // namespace kvaudit::model
