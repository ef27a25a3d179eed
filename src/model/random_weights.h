// --random-weights (SPEC.md §1): deterministic weights of the real shapes from a counter-based
// hash, so any tensor element is a pure function of (seed, tensor name, index) and filling is fast.
#pragma once
#include <cstdint>

#include "model/arch.h"
#include "model/config.h"
#include "model/weights.h"

namespace kvaudit::model {

// Linear weights ~ U(-1, 1) / sqrt(fan_in); embeddings ~ U(-1, 1); biases ~ 0.1 U(-1, 1);
// norms: effective scale 1 + 0.1 U(-1, 1) (the stored weight is 0.1 U for (1 + w) norms).
void fill_random_weights(const ModelConfig& c, const ArchSpec& a, uint64_t seed, Weights& w);

// The generator: uniform in [-1, 1) from (seed, stream, index).
float hash_uniform(uint64_t seed, uint64_t stream, uint64_t index);

}  // namespace kvaudit::model
