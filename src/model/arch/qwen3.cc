// Qwen3: the llama block with per-head RMSNorm on q and k (over head_dim) before RoPE.
#include "model/arch/arch_list.h"

namespace kvaudit::model::arch {

ArchSpec qwen3() {
  ArchSpec s;
  s.name = "qwen3";
  s.qk_norm = QkNorm::kPerHead;
  return s;
}

}  // namespace kvaudit::model::arch
