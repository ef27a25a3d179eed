// Outlier key channels (SPEC.md §5): per layer, the channels (all H·D, pre-RoPE keys) whose max|k|
// over the calibration prompts' prefill reaches the rules::kOutlierPercentile-th percentile of that
// layer's channel maxima.
#pragma once
#include <vector>

namespace kvaudit::diagnose {

// numpy.percentile's default ("linear"): the value at rank p/100·(n-1) of the sorted values,
// interpolated between neighbours. NaN for an empty input.
double percentile_linear(std::vector<double> values, double p);

struct OutlierChannels {
  int layer = 0;
  double threshold = 0;              // the percentile of channel_max
  std::vector<double> channel_max;   // [H·D] max|k| per channel
  std::vector<int> channels;         // channel_max >= threshold, ascending
};

OutlierChannels find_outliers(int layer, std::vector<double> channel_max);

}  // namespace kvaudit::diagnose
