// nuqB, KVQuant-style (SPEC.md §3): a per-channel non-uniform codebook of 2^B levels learned from
// calibration values (1-D k-means, quantile initialisation), plus dense-and-sparse outliers: values
// outside the channel's calibrated [lo, hi] (quantiles sparse/2 and 1 - sparse/2) are kept exact
// in fp16. Codebooks and thresholds are per layer and role, fixed before the sequence starts.
#pragma once
#include <memory>
#include <vector>

#include "kv/calibration.h"
#include "kv/row_quantizer.h"

namespace kvaudit::kv {

struct NuqTables {
  int bits = 0;
  std::vector<float> levels;  // [n_channels, 2^bits], ascending, fp16-exact
  std::vector<float> lo, hi;  // [n_channels]: values outside [lo, hi] are sparse outliers
};

// channels: the original channel index of each quantized channel (the compact row, SPEC +protect).
// Throws UsageError when the statistics hold no sample rows.
NuqTables fit_nuq(const ChannelStats& stats, const std::vector<int>& channels, int bits, double sparse);
// Index of the nearest level (ties to the lower level). levels: [n] ascending.
int nuq_nearest(const float* levels, int n, float x);

std::unique_ptr<RowQuantizer> make_nuq_quantizer(NuqTables tables);

}  // namespace kvaudit::kv
