// PCR, failure mode and prescription (SPEC.md §5). Thresholds: diagnose/rules.h.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "diagnose/critical_layers.h"
#include "eval/metrics.h"

namespace kvaudit::diagnose {

// PCR = 1 - flip(per-channel) / flip(per-tensor), not clipped; NaN (null) when flip(per-tensor) is
// 0 or undefined.
double pcr(double flip_per_channel, double flip_per_tensor);

enum class FailureMode { kNone, kOutlierAsSafety, kMixed, kOutlierCrushesSafety, kMultiLayerDilution, kFull16Bit };
// "none", "outlier-as-safety", "mixed", "outlier-crushes-safety", "multi-layer-dilution", "full-16-bit".
std::string to_string(FailureMode m);

// Every scanned layer with flip > kEveryLayerFlip -> full-16-bit; else no critical layer or PCR
// undefined -> none; PCR < kPcrOutlierAsSafety -> outlier-as-safety; <= kPcrOutlierCrushes -> mixed;
// above: one critical layer -> outlier-crushes-safety, several -> multi-layer-dilution.
FailureMode classify(double pcr_value, const std::vector<LayerFlip>& scan, const std::vector<LayerFlip>& critical);

// The bit-width a target spends on most values: intB/kiviB/nuqB -> B, fp8 -> 8, q8_0 -> 8, q5_x -> 5,
// q4_x / iq4_nl -> 4, 16-bit -> 16; the largest over the spec's parts.
int target_bits(const std::string& target_spec);

struct Plan {
  std::string name;  // e.g. "16-bit layers 3,7"
  std::string spec;  // a SPEC.md §3 spec over the target
};

// "layers[3,7]" for the given critical layers (in the given order, sorted ascending).
std::string layer_list(std::vector<int> layers);

// The prescription of a failure mode for `target` (nullopt for kNone).
std::optional<Plan> prescribe(FailureMode m, const std::vector<LayerFlip>& critical, const std::string& target);

// SPEC.md §5 candidates: the prescription, 16-bit top-k critical layers (k = 1..min(5, #critical)),
// group-64 everywhere, per-channel at the critical layers, 8-bit critical layers; duplicates (same
// spec) dropped, first name kept.
std::vector<Plan> candidate_plans(const std::optional<Plan>& prescription, const std::vector<LayerFlip>& critical,
                                  const std::string& target);

}  // namespace kvaudit::diagnose
