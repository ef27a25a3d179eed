// Per-architecture structure of the decoder block (SPEC.md §1, STYLE.md "New architecture").
// The forward pass reads these fields, never the architecture's name. One file per
// architecture in model/arch/<name>.cc, registered in model/arch/registry.cc.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"

namespace kvaudit::model {

enum class NormKind {
  kRms,               // y = w * x / sqrt(mean(x^2) + eps)
  kRmsOnePlusWeight,  // y = (1 + w) * x / sqrt(mean(x^2) + eps)   (gemma2)
};

enum class QkNorm {
  kNone,
  kPerHead,  // qwen3: RMSNorm over head_dim of each q head / k head; weight [head_dim]; before RoPE
  kFull,     // olmo2: RMSNorm over the whole q projection [n_heads*head_dim] and k [n_kv_heads*head_dim]; before RoPE
};

enum class RopeStyle {
  kNeox,  // HF rotate-half: pairs (i, i + rotary_dim/2). Used for every arch: GGUF llama Q/K rows are un-permuted at load.
};

// Block (per layer), with x the residual stream:
//   a = pre_attn_norm ? norm(x, attn_norm) : x
//   a = attention(a)                                     (q/k/v projections, qkv bias, q/k norm, RoPE, softcap)
//   a = post_attn_norm ? norm(a, post_attn_norm) : a
//   x = x + a
//   f = pre_ffn_norm ? norm(x, ffn_norm) : x
//   f = w_down(act(w_gate f) * (w_up f))
//   f = post_ffn_norm ? norm(f, post_ffn_norm) : f
//   x = x + f
// Model: x = embed[tok] * (embed_scale_sqrt_d ? sqrt(d_model) : 1); blocks; norm(x, final_norm);
//        logits = lm_head x (embed when tied); final softcap when config.final_softcap > 0.
// How llama.cpp rotates this architecture (llama_model_rope_type in llama.cpp's src/llama-model.cpp).
// kNorm: pairs of adjacent channels; its converter permuted the Q/K rows so that this equals HF's
// rotate-half, and its KV cache holds keys in that permuted channel order (kv::CacheGeometry).
// kNeox: pairs (i, i + n_rot/2), the HF channel order.
enum class LlamaCppRope { kNorm, kNeox };

struct ArchSpec {
  std::string name;  // HF model_type
  NormKind norm = NormKind::kRms;  // every norm of the model, final included
  bool pre_attn_norm = true;
  bool post_attn_norm = false;
  bool pre_ffn_norm = true;
  bool post_ffn_norm = false;
  bool qkv_bias = false;        // true: bq/bk/bv always present (qwen2); otherwise config.attention_bias decides
  QkNorm qk_norm = QkNorm::kNone;
  Activation default_act = Activation::kSilu;  // when the config names none; the model uses config.act
  bool embed_scale_sqrt_d = false;  // gemma2: embeddings * sqrt(d_model), the factor rounded to the compute dtype
  bool softcaps = false;            // gemma2: config.attn_softcap / final_softcap apply
  bool sliding_alternating = false; // gemma2 4.x configs without layer_types: sliding on even layers
  RopeStyle rope = RopeStyle::kNeox;
  // Load-time only (the Weights always hold separate q/k/v and gate/up):
  bool fused_qkv = false;      // phi3: qkv_proj [q_dim + 2*kv_dim, d_model] split into wq, wk, wv
  bool fused_gate_up = false;  // phi3: gate_up_proj [2*d_ff, d_model], first half gate, second up
  bool gguf_qk_permuted = false;  // llama.cpp's converter permuted Q/K rows for interleaved RoPE (llama)
  bool gguf_norms_plus_one = false;  // llama.cpp's gemma2 converter stored norm weights as w + 1
  LlamaCppRope llama_cpp_rope = LlamaCppRope::kNeox;  // what llama.cpp runs it with (its key cache order)
};

// The spec of an HF model_type. Throws UsageError listing the supported ones when unknown.
const ArchSpec& arch_spec(const std::string& model_type);
// Supported model_type names, sorted.
std::vector<std::string> supported_archs();

}  // namespace kvaudit::model
