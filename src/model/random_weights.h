// --random-weights (SPEC.md §1): deterministic weights of the real shapes from a counter-based
// hash, so any tensor element is a pure function of (seed, tensor name, index) and filling is fast.
#pragma once
#include <cstdint>
#include <vector>

#include "io/ggml_quants.h"

#include "model/arch.h"
#include "model/config.h"
#include "model/weight_parts.h"
#include "model/weights.h"

namespace kvaudit::model {

// Linear weights ~ U(-1, 1) / sqrt(fan_in); embeddings ~ U(-1, 1); biases ~ 0.1 U(-1, 1);
// norms: effective scale 1 + 0.1 U(-1, 1) (the stored weight is 0.1 U for (1 + w) norms).
void fill_random_weights(const ModelConfig& c, const ArchSpec& a, uint64_t seed, Weights& w);

// One part's range (values offset + scale * U(-1, 1)), stream id and values, as fill_random_weights uses.
struct RandomRange {
  float scale, offset;
};
RandomRange random_range(const PartRef& p, const ArchSpec& a);
uint64_t random_stream(const PartRef& p, const ArchSpec& a);
std::vector<float> random_values(const PartRef& p, const ArchSpec& a, uint64_t seed);

// The generator: uniform in [-1, 1) from (seed, stream, index).
float hash_uniform(uint64_t seed, uint64_t stream, uint64_t index);

// Random stored rows of ggml type t, [rows, cols], written directly per block (no quantizer):
// random codes and sub-block scales, with the block scales (d, dmin, m) set so decoded values lie
// within about +-scale. F32/F16/BF16 hold scale * U(-1, 1). A pure function of (seed, stream).
std::vector<uint8_t> random_blocks(io::GgmlType t, int64_t rows, int64_t cols, float scale, uint64_t seed,
                                   uint64_t stream);

}  // namespace kvaudit::model
