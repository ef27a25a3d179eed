// Gemma 2: (1 + w) RMSNorm, pre and post norms around attention and MLP, gelu-tanh, embeddings
// scaled by sqrt(d_model), attention and final logit soft-capping, query_pre_attn_scalar,
// sliding window on alternate layers (transformers Gemma2DecoderLayer: even layers slide).
#include "model/arch/arch_list.h"

namespace kvaudit::model::arch {

ArchSpec gemma2() {
  ArchSpec s;
  s.name = "gemma2";
  s.norm = NormKind::kRmsOnePlusWeight;
  s.post_attn_norm = true;
  s.post_ffn_norm = true;
  s.default_act = Activation::kGeluTanh;
  s.embed_scale_sqrt_d = true;
  s.softcaps = true;
  s.sliding_alternating = true;
  // llama.cpp's converter adds 1 to every norm weight, so GGUF gemma2 norms are plain RMS.
  s.gguf_norms_plus_one = true;
  return s;
}

}  // namespace kvaudit::model::arch
