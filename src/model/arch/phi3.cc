// Phi-3 / Phi-3.5: the llama block with fused qkv_proj and gate_up_proj (split at load).
#include "model/arch/arch_list.h"

namespace kvaudit::model::arch {

ArchSpec phi3() {
  ArchSpec s;
  s.name = "phi3";
  s.fused_qkv = true;
  s.fused_gate_up = true;
  return s;
}

}  // namespace kvaudit::model::arch
