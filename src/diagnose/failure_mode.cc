#include "diagnose/failure_mode.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "diagnose/rules.h"
#include "kv/spec.h"

namespace kvaudit::diagnose {

double pcr(double flip_per_channel, double flip_per_tensor) {
  if (std::isnan(flip_per_tensor) || flip_per_tensor == 0.0 || std::isnan(flip_per_channel)) return eval::kNaN;
  return 1.0 - flip_per_channel / flip_per_tensor;
}

std::string to_string(FailureMode m) {
  switch (m) {
    case FailureMode::kNone: return "none";
    case FailureMode::kOutlierAsSafety: return "outlier-as-safety";
    case FailureMode::kMixed: return "mixed";
    case FailureMode::kOutlierCrushesSafety: return "outlier-crushes-safety";
    case FailureMode::kMultiLayerDilution: return "multi-layer-dilution";
    case FailureMode::kFull16Bit: return "full-16-bit";
  }
  return "none";
}

FailureMode classify(double pcr_value, const std::vector<LayerFlip>& scan, const std::vector<LayerFlip>& critical) {
  const bool every_layer = !scan.empty() && std::all_of(scan.begin(), scan.end(), [](const LayerFlip& l) {
    return !std::isnan(l.metrics.flip_rate) && l.metrics.flip_rate > rules::kEveryLayerFlip;
  });
  if (every_layer) return FailureMode::kFull16Bit;
  if (critical.empty() || std::isnan(pcr_value)) return FailureMode::kNone;
  if (pcr_value < rules::kPcrOutlierAsSafety) return FailureMode::kOutlierAsSafety;
  if (pcr_value <= rules::kPcrOutlierCrushes) return FailureMode::kMixed;
  return critical.size() == 1 ? FailureMode::kOutlierCrushesSafety : FailureMode::kMultiLayerDilution;
}

int target_bits(const std::string& target_spec) {
  int bits = 0;
  for (const kv::SpecPart& p : kv::parse_spec(target_spec)) {
    const kv::SchemeSpec& s = p.scheme;
    int b = 16;
    switch (s.kind) {
      case kv::SchemeKind::kInt:
      case kv::SchemeKind::kKivi:
      case kv::SchemeKind::kNuq: b = s.bits; break;
      case kv::SchemeKind::kFp8E4M3:
      case kv::SchemeKind::kFp8E5M2:
      case kv::SchemeKind::kQ8_0: b = 8; break;
      case kv::SchemeKind::kQ5_0:
      case kv::SchemeKind::kQ5_1: b = 5; break;
      case kv::SchemeKind::kQ4_0:
      case kv::SchemeKind::kQ4_1:
      case kv::SchemeKind::kIq4Nl: b = 4; break;
      case kv::SchemeKind::kFp16:
      case kv::SchemeKind::kBf16: b = 16; break;
    }
    bits = std::max(bits, b);
  }
  return bits;
}

std::string layer_list(std::vector<int> layers) {
  std::sort(layers.begin(), layers.end());
  return fmt::format("layers[{}]", fmt::join(layers, ","));
}

namespace {

std::vector<int> layers_of(const std::vector<LayerFlip>& critical, size_t k) {
  std::vector<int> out;
  for (size_t i = 0; i < std::min(k, critical.size()); ++i) out.push_back(critical[i].layer);
  return out;
}

std::string joined(std::vector<int> layers) {
  std::sort(layers.begin(), layers.end());
  return fmt::format("{}", fmt::join(layers, ","));
}

Plan sixteen_bit(const std::vector<int>& layers, const std::string& target) {
  return {fmt::format("16-bit layer{} {}", layers.size() > 1 ? "s" : "", joined(layers)),
          fmt::format("{};{}=fp16", target, layer_list(layers))};
}

Plan group64(int bits) {
  return {fmt::format("int{} group-{} everywhere", bits, rules::kGroupSize),
          fmt::format("int{}:group:g{}", bits, rules::kGroupSize)};
}

Plan per_channel_critical(const std::vector<int>& layers, int bits, bool group_elsewhere, const std::string& target) {
  const std::string base = group_elsewhere ? group64(bits).spec : target;
  return {fmt::format("int{} per-channel at layer{} {}{}", bits, layers.size() > 1 ? "s" : "", joined(layers),
                      group_elsewhere ? fmt::format(", group-{} elsewhere", rules::kGroupSize) : ""),
          fmt::format("{};{}=int{}:channel", base, layer_list(layers), bits)};
}

}  // namespace

std::optional<Plan> prescribe(FailureMode m, const std::vector<LayerFlip>& critical, const std::string& target) {
  const int bits = std::min(8, target_bits(target));
  const std::vector<int> all = layers_of(critical, critical.size());
  switch (m) {
    case FailureMode::kNone: return std::nullopt;
    case FailureMode::kOutlierAsSafety:
    case FailureMode::kMultiLayerDilution: return sixteen_bit(all, target);
    case FailureMode::kMixed: return per_channel_critical(all, bits, true, target);
    case FailureMode::kOutlierCrushesSafety: return group64(bits);
    case FailureMode::kFull16Bit: return Plan{"16-bit cache", "fp16"};
  }
  return std::nullopt;
}

std::vector<Plan> candidate_plans(const std::optional<Plan>& prescription, const std::vector<LayerFlip>& critical,
                                  const std::string& target) {
  const int bits = std::min(8, target_bits(target));
  std::vector<Plan> plans;
  auto add = [&](const Plan& p) {
    if (std::none_of(plans.begin(), plans.end(), [&](const Plan& q) { return q.spec == p.spec; })) plans.push_back(p);
  };
  if (prescription) add(*prescription);
  for (size_t k = 1; k <= std::min<size_t>(rules::kMaxTopK16, critical.size()); ++k)
    add(sixteen_bit(layers_of(critical, k), target));
  add(group64(bits));
  if (!critical.empty()) {
    const std::vector<int> all = layers_of(critical, critical.size());
    add(per_channel_critical(all, bits, false, target));
    add({fmt::format("8-bit layer{} {}", all.size() > 1 ? "s" : "", joined(all)),
         fmt::format("{};{}=int8:token", target, layer_list(all))});
  }
  return plans;
}

}  // namespace kvaudit::diagnose
