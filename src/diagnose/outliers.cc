#include "diagnose/outliers.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "diagnose/rules.h"

namespace kvaudit::diagnose {

double percentile_linear(std::vector<double> values, double p) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * double(values.size() - 1);
  const size_t lo = size_t(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = rank - double(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

OutlierChannels find_outliers(int layer, std::vector<double> channel_max) {
  OutlierChannels o;
  o.layer = layer;
  o.threshold = percentile_linear(channel_max, rules::kOutlierPercentile);
  for (size_t c = 0; c < channel_max.size(); ++c)
    if (channel_max[c] >= o.threshold) o.channels.push_back(int(c));
  o.channel_max = std::move(channel_max);
  return o;
}

}  // namespace kvaudit::diagnose
