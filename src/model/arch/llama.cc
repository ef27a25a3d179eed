// Llama 2/3/3.1, SmolLM2, TinyLlama, DeepSeek-7B, Yi: pre-norm RMSNorm, SwiGLU, rotate-half RoPE.
#include "model/arch/arch_list.h"

namespace kvaudit::model::arch {

ArchSpec llama() {
  ArchSpec s;
  s.name = "llama";
  // llama.cpp's convert_hf_to_gguf permutes q_proj/k_proj rows for its interleaved RoPE.
  s.gguf_qk_permuted = true;
  s.llama_cpp_rope = LlamaCppRope::kNorm;  // LLM_ARCH_LLAMA: LLAMA_ROPE_TYPE_NORM
  return s;
}

}  // namespace kvaudit::model::arch
