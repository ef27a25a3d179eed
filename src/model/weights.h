// The model's weights in HF (PyTorch) layout: a linear layer's weight is [out_features,
// in_features], row-major. Matrices stay in the encoding the file stores (model/weight.h); the
// small vectors (norms, biases) are fp32. An empty vector or matrix means the ArchSpec says the
// tensor is absent (never that it was missing from the file: that is a load error).
#pragma once
#include <vector>

#include "model/weight.h"

namespace kvaudit::model {

struct LayerWeights {
  std::vector<float> attn_norm;       // [d_model]             pre-attention norm (input_layernorm)
  WeightMatrix wq;                    // [n_heads*head_dim, d_model]
  WeightMatrix wk;                    // [n_kv_heads*head_dim, d_model]
  WeightMatrix wv;                    // [n_kv_heads*head_dim, d_model]
  WeightMatrix wo;                    // [d_model, n_heads*head_dim]
  std::vector<float> bq;              // [n_heads*head_dim]     qkv bias (qwen2), else empty
  std::vector<float> bk;              // [n_kv_heads*head_dim]
  std::vector<float> bv;              // [n_kv_heads*head_dim]
  std::vector<float> q_norm;          // [head_dim] (QkNorm::kPerHead) or [n_heads*head_dim] (kFull), else empty
  std::vector<float> k_norm;          // [head_dim] (kPerHead) or [n_kv_heads*head_dim] (kFull), else empty
  std::vector<float> post_attn_norm;  // [d_model]             gemma2, olmo2
  std::vector<float> ffn_norm;        // [d_model]             pre-FFN norm
  WeightMatrix w_gate;                // [d_ff, d_model]
  WeightMatrix w_up;                  // [d_ff, d_model]
  WeightMatrix w_down;                // [d_model, d_ff]
  std::vector<float> post_ffn_norm;   // [d_model]             gemma2, olmo2
};

struct Weights {
  WeightMatrix embed;             // [n_vocab, d_model]
  std::vector<float> final_norm;  // [d_model]
  WeightMatrix lm_head;           // [n_vocab, d_model]; empty when tied (use embed)
  std::vector<LayerWeights> layers;  // [n_layers]

  const WeightMatrix& output_matrix() const { return lm_head.empty() ? embed : lm_head; }
};

}  // namespace kvaudit::model
