// Qwen2 / Qwen2.5: the llama block with biases on q_proj, k_proj, v_proj.
#include "model/arch/arch_list.h"

namespace kvaudit::model::arch {

ArchSpec qwen2() {
  ArchSpec s;
  s.name = "qwen2";
  s.qkv_bias = true;
  return s;
}

}  // namespace kvaudit::model::arch
