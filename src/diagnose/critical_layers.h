// Critical layers (SPEC.md §5): each layer's K and V alone under rules::kScanScheme, the flip rate on
// the calibration prompts; ranked by flip rate, ties to the lower layer; critical = the top
// rules::kCriticalTopK with flip >= rules::kCriticalMinFlip. No fallback list: none may qualify.
#pragma once
#include <string>
#include <vector>

#include "eval/metrics.h"

namespace kvaudit::diagnose {

struct LayerFlip {
  int layer = 0;
  eval::BenchMetrics metrics;  // flip_rate NaN when the baseline refused nothing
};

// The ranking (every layer with a defined flip rate, best first) and the critical prefix of it.
std::vector<LayerFlip> rank_layers(const std::vector<LayerFlip>& scan);
std::vector<LayerFlip> critical_layers(const std::vector<LayerFlip>& scan);

// The scan's policy for layer l: "layers[l]=<kScanScheme>" (every other layer 16-bit).
std::string layer_scan_spec(int layer);

}  // namespace kvaudit::diagnose
