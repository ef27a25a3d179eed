#include "model/rope.h"

#include "core/error.h"

namespace kvaudit::model {

std::vector<float> rope_inv_freq(const ModelConfig& c, int64_t seq_len) {
  runtime_error("rope_inv_freq: not implemented yet");
}

float rope_attention_scaling(const ModelConfig& c) { return 1.0f; }

}  // namespace kvaudit::model
