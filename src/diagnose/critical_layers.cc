#include "diagnose/critical_layers.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "diagnose/rules.h"

namespace kvaudit::diagnose {

std::vector<LayerFlip> rank_layers(const std::vector<LayerFlip>& scan) {
  std::vector<LayerFlip> ranked;
  for (const auto& l : scan)
    if (!std::isnan(l.metrics.flip_rate)) ranked.push_back(l);
  std::stable_sort(ranked.begin(), ranked.end(), [](const LayerFlip& a, const LayerFlip& b) {
    if (a.metrics.flip_rate != b.metrics.flip_rate) return a.metrics.flip_rate > b.metrics.flip_rate;
    return a.layer < b.layer;
  });
  return ranked;
}

std::vector<LayerFlip> critical_layers(const std::vector<LayerFlip>& scan) {
  std::vector<LayerFlip> out;
  for (const auto& l : rank_layers(scan)) {
    if (int(out.size()) == rules::kCriticalTopK || l.metrics.flip_rate < rules::kCriticalMinFlip) break;
    out.push_back(l);
  }
  return out;
}

std::string layer_scan_spec(int layer) { return fmt::format("layers[{}]={}", layer, rules::kScanScheme); }

}  // namespace kvaudit::diagnose
