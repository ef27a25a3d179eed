// Mistral: the llama block; sliding_window (v0.1) applies to every layer.
#include "model/arch/arch_list.h"

namespace kvaudit::model::arch {

ArchSpec mistral() {
  ArchSpec s;
  s.name = "mistral";
  s.gguf_qk_permuted = true;  // converted as a llama model by llama.cpp
  s.llama_cpp_rope = LlamaCppRope::kNorm;  // run as LLM_ARCH_LLAMA: LLAMA_ROPE_TYPE_NORM
  return s;
}

}  // namespace kvaudit::model::arch
