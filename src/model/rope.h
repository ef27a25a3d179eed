// RoPE frequencies as transformers computes them (modeling_rope_utils), so the engine need not
// know the scaling variants. Rotate-half convention (ArchSpec::rope = kNeox).
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace kvaudit::model {

// [rotary_dim/2] inverse frequencies for a sequence of seq_len positions (only longrope depends
// on seq_len: long factors when seq_len > original max). angle(t, i) = t * inv_freq[i].
std::vector<float> rope_inv_freq(const ModelConfig& c, int64_t seq_len);
// Lengths with the same key get the same rope_inv_freq (longrope: 1 past the original max, else
// 0), so a caller may compute it once per key.
int rope_inv_freq_key(const ModelConfig& c, int64_t seq_len);
// Scale applied to cos and sin (1 except longrope / yarn).
float rope_attention_scaling(const ModelConfig& c);

}  // namespace kvaudit::model
