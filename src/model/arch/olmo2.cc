// OLMo 2: no pre-norms; RMSNorm on the attention and MLP outputs before the residual add, and
// RMSNorm over the whole q and k projections (all heads) before RoPE.
#include "model/arch/arch_list.h"

namespace kvaudit::model::arch {

ArchSpec olmo2() {
  ArchSpec s;
  s.name = "olmo2";
  s.pre_attn_norm = false;
  s.pre_ffn_norm = false;
  s.post_attn_norm = true;
  s.post_ffn_norm = true;
  s.qk_norm = QkNorm::kFull;
  return s;
}

}  // namespace kvaudit::model::arch
