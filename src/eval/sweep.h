// Phase transition (SPEC.md §4 "Phase transition (sweep)"): one scheme family over bit-widths,
// and the onset = the highest bit-width whose flip-rate Wilson lower bound exceeds --threshold.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "eval/metrics.h"

namespace kvaudit::eval {

inline const std::vector<int> kDefaultSweepBits = {16, 8, 6, 5, 4, 3, 2};

// `--bits 16,8,4`: comma-separated integers in [1, 16]; UsageError naming `flag` otherwise.
std::vector<int> parse_bits(const std::string& list, const std::string& flag = "--bits");

// The scheme spec for one bit-width: 16 -> "fp16"; otherwise the family's first token gets the
// bits: "int:token:asym" -> "int4:token:asym", "kivi:g32" -> "kivi2:g32", "nuq" -> "nuq3".
// A family that already has digits ("int4"), or is not int/kivi/nuq, is a UsageError naming --scheme.
std::string sweep_spec(const std::string& family, int bits);

// The family and bit-width of a sweepable spec, the inverse of sweep_spec: "int3:tensor:sym" ->
// {"int:tensor:sym", 3}, "kivi2" -> {"kivi", 2}; nullopt for specs outside int/kivi/nuq (fp8, q4_0).
struct FamilyMember {
  std::string family;
  int bits = 0;
};
std::optional<FamilyMember> sweep_family(const std::string& spec);

struct SweepPoint {
  int bits = 16;
  BenchMetrics metrics;
};

// The onset bit-width: the highest `bits` whose flip_ci_low > threshold; nullopt when none does
// (undefined lower bounds never count).
// The default threshold is diagnose::rules::kOnsetThreshold (every threshold lives in rules.h).
std::optional<int> onset_bits(const std::vector<SweepPoint>& points, double threshold);

}  // namespace kvaudit::eval
