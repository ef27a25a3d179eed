#include "model/weight_parts.h"

#include <fmt/format.h>

namespace kvaudit::model {

std::vector<PartRef> weight_parts(const ModelConfig& c, const ArchSpec& a, Weights& w) {
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ff = c.d_ff;
  std::vector<PartRef> parts;
  parts.push_back({Part::kEmbed, -1, {c.n_vocab, d}, nullptr, &w.embed});
  parts.push_back({Part::kFinalNorm, -1, {d}, &w.final_norm});
  if (!c.tie_embeddings) parts.push_back({Part::kLmHead, -1, {c.n_vocab, d}, nullptr, &w.lm_head});
  w.layers.resize(size_t(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[size_t(l)];
    if (a.pre_attn_norm) parts.push_back({Part::kAttnNorm, l, {d}, &L.attn_norm});
    parts.push_back({Part::kWq, l, {q, d}, nullptr, &L.wq});
    parts.push_back({Part::kWk, l, {kv, d}, nullptr, &L.wk});
    parts.push_back({Part::kWv, l, {kv, d}, nullptr, &L.wv});
    parts.push_back({Part::kWo, l, {d, q}, nullptr, &L.wo});
    if (c.attention_bias) {
      parts.push_back({Part::kBq, l, {q}, &L.bq});
      parts.push_back({Part::kBk, l, {kv}, &L.bk});
      parts.push_back({Part::kBv, l, {kv}, &L.bv});
    }
    if (a.qk_norm == QkNorm::kPerHead) {
      parts.push_back({Part::kQNorm, l, {c.head_dim}, &L.q_norm});
      parts.push_back({Part::kKNorm, l, {c.head_dim}, &L.k_norm});
    } else if (a.qk_norm == QkNorm::kFull) {
      parts.push_back({Part::kQNorm, l, {q}, &L.q_norm});
      parts.push_back({Part::kKNorm, l, {kv}, &L.k_norm});
    }
    if (a.post_attn_norm) parts.push_back({Part::kPostAttnNorm, l, {d}, &L.post_attn_norm});
    if (a.pre_ffn_norm) parts.push_back({Part::kFfnNorm, l, {d}, &L.ffn_norm});
    parts.push_back({Part::kGate, l, {ff, d}, nullptr, &L.w_gate});
    parts.push_back({Part::kUp, l, {ff, d}, nullptr, &L.w_up});
    parts.push_back({Part::kDown, l, {d, ff}, nullptr, &L.w_down});
    if (a.post_ffn_norm) parts.push_back({Part::kPostFfnNorm, l, {d}, &L.post_ffn_norm});
  }
  return parts;
}

bool is_norm(Part p) {
  switch (p) {
    case Part::kFinalNorm: case Part::kAttnNorm: case Part::kQNorm: case Part::kKNorm:
    case Part::kPostAttnNorm: case Part::kFfnNorm: case Part::kPostFfnNorm:
      return true;
    default:
      return false;
  }
}

const char* part_label(Part p) {
  switch (p) {
    case Part::kEmbed: return "embed";
    case Part::kFinalNorm: return "final_norm";
    case Part::kLmHead: return "lm_head";
    case Part::kAttnNorm: return "attn_norm";
    case Part::kWq: return "wq";
    case Part::kWk: return "wk";
    case Part::kWv: return "wv";
    case Part::kWo: return "wo";
    case Part::kBq: return "bq";
    case Part::kBk: return "bk";
    case Part::kBv: return "bv";
    case Part::kQNorm: return "q_norm";
    case Part::kKNorm: return "k_norm";
    case Part::kPostAttnNorm: return "post_attn_norm";
    case Part::kFfnNorm: return "ffn_norm";
    case Part::kGate: return "w_gate";
    case Part::kUp: return "w_up";
    case Part::kDown: return "w_down";
    case Part::kPostFfnNorm: return "post_ffn_norm";
  }
  return "?";
}

std::string hf_tensor_name(Part p, int layer, const ArchSpec& a) {
  const std::string L = fmt::format("model.layers.{}.", layer);
  switch (p) {
    case Part::kEmbed: return "model.embed_tokens.weight";
    case Part::kFinalNorm: return "model.norm.weight";
    case Part::kLmHead: return "lm_head.weight";
    case Part::kAttnNorm: return L + "input_layernorm.weight";
    case Part::kWq: return L + "self_attn.q_proj.weight";
    case Part::kWk: return L + "self_attn.k_proj.weight";
    case Part::kWv: return L + "self_attn.v_proj.weight";
    case Part::kWo: return L + "self_attn.o_proj.weight";
    case Part::kBq: return L + "self_attn.q_proj.bias";
    case Part::kBk: return L + "self_attn.k_proj.bias";
    case Part::kBv: return L + "self_attn.v_proj.bias";
    case Part::kQNorm: return L + "self_attn.q_norm.weight";
    case Part::kKNorm: return L + "self_attn.k_norm.weight";
    case Part::kPostAttnNorm: return L + "post_attention_layernorm.weight";
    case Part::kFfnNorm:
      return L + (a.post_attn_norm ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight");
    case Part::kGate: return L + "mlp.gate_proj.weight";
    case Part::kUp: return L + "mlp.up_proj.weight";
    case Part::kDown: return L + "mlp.down_proj.weight";
    case Part::kPostFfnNorm: return L + "post_feedforward_layernorm.weight";
  }
  return "?";
}

std::string hf_fused_qkv_name(int layer) { return fmt::format("model.layers.{}.self_attn.qkv_proj.weight", layer); }
std::string hf_fused_gate_up_name(int layer) { return fmt::format("model.layers.{}.mlp.gate_up_proj.weight", layer); }

std::string gguf_tensor_name(Part p, int layer) {
  const std::string L = fmt::format("blk.{}.", layer);
  switch (p) {
    case Part::kEmbed: return "token_embd.weight";
    case Part::kFinalNorm: return "output_norm.weight";
    case Part::kLmHead: return "output.weight";
    case Part::kAttnNorm: return L + "attn_norm.weight";
    case Part::kWq: return L + "attn_q.weight";
    case Part::kWk: return L + "attn_k.weight";
    case Part::kWv: return L + "attn_v.weight";
    case Part::kWo: return L + "attn_output.weight";
    case Part::kBq: return L + "attn_q.bias";
    case Part::kBk: return L + "attn_k.bias";
    case Part::kBv: return L + "attn_v.bias";
    case Part::kQNorm: return L + "attn_q_norm.weight";
    case Part::kKNorm: return L + "attn_k_norm.weight";
    case Part::kPostAttnNorm: return L + "post_attention_norm.weight";
    case Part::kFfnNorm: return L + "ffn_norm.weight";
    case Part::kGate: return L + "ffn_gate.weight";
    case Part::kUp: return L + "ffn_up.weight";
    case Part::kDown: return L + "ffn_down.weight";
    case Part::kPostFfnNorm: return L + "post_ffw_norm.weight";
  }
  return "?";
}

std::string gguf_fused_qkv_name(int layer) { return fmt::format("blk.{}.attn_qkv.weight", layer); }
std::string gguf_fused_gate_up_name(int layer) { return fmt::format("blk.{}.ffn_up.weight", layer); }

int64_t count_params(const Weights& w) {
  int64_t n = int64_t(w.embed.size() + w.final_norm.size() + w.lm_head.size());
  for (const LayerWeights& L : w.layers) {
    for (const std::vector<float>* v :
         {&L.attn_norm, &L.bq, &L.bk, &L.bv, &L.q_norm, &L.k_norm, &L.post_attn_norm, &L.ffn_norm, &L.post_ffn_norm})
      n += int64_t(v->size());
    for (const WeightMatrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) n += m->size();
  }
  return n;
}

}  // namespace kvaudit::model
