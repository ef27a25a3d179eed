// The model's weights, dequantized to fp32 at load, in HF (PyTorch) layout: a linear layer's
// weight is [out_features, in_features], row-major. An empty vector means the ArchSpec says the
// tensor is absent (never that it was missing from the file: that is a load error).
#pragma once
#include <vector>

namespace kvaudit::model {

struct LayerWeights {
  std::vector<float> attn_norm;       // [d_model]             pre-attention norm (input_layernorm)
  std::vector<float> wq;              // [n_heads*head_dim, d_model]
  std::vector<float> wk;              // [n_kv_heads*head_dim, d_model]
  std::vector<float> wv;              // [n_kv_heads*head_dim, d_model]
  std::vector<float> wo;              // [d_model, n_heads*head_dim]
  std::vector<float> bq;              // [n_heads*head_dim]     qkv bias (qwen2), else empty
  std::vector<float> bk;              // [n_kv_heads*head_dim]
  std::vector<float> bv;              // [n_kv_heads*head_dim]
  std::vector<float> q_norm;          // [head_dim] (QkNorm::kPerHead) or [n_heads*head_dim] (kFull), else empty
  std::vector<float> k_norm;          // [head_dim] (kPerHead) or [n_kv_heads*head_dim] (kFull), else empty
  std::vector<float> post_attn_norm;  // [d_model]             gemma2, olmo2
  std::vector<float> ffn_norm;        // [d_model]             pre-FFN norm
  std::vector<float> w_gate;          // [d_ff, d_model]
  std::vector<float> w_up;            // [d_ff, d_model]
  std::vector<float> w_down;          // [d_model, d_ff]
  std::vector<float> post_ffn_norm;   // [d_model]             gemma2, olmo2
};

struct Weights {
  std::vector<float> embed;       // [n_vocab, d_model]
  std::vector<float> final_norm;  // [d_model]
  std::vector<float> lm_head;     // [n_vocab, d_model]; empty when tied (use embed)
  std::vector<LayerWeights> layers;  // [n_layers]

  const std::vector<float>& output_matrix() const { return lm_head.empty() ? embed : lm_head; }
};

}  // namespace kvaudit::model
