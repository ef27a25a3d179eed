// The prompt sets of the protocol (SPEC.md §5 "Prompts"): `--calib BENCH[:N]` (the first N, as the
// research code takes the first 20 custom prompts) and `--heldout BENCH[:N]` (a seeded subset of N,
// disjoint from the calibration prompts by text), and the harmful/harmless pairs for geometry.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "eval/benchmarks.h"

namespace kvaudit::diagnose {

struct PromptSetSpec {
  std::string bench;  // e.g. "custom", "harmbench:contextual", "my.csv"
  size_t n = 0;       // 0 = all
};

// "advbench:200" -> {advbench, 200}; a trailing ":digits" is the count. UsageError naming `flag`
// for an empty name or a zero count.
PromptSetSpec parse_prompt_set(const std::string& text, const std::string& flag);

std::vector<eval::Prompt> calibration_prompts(const PromptSetSpec& s, const std::string& data_dir);
std::vector<eval::Prompt> heldout_prompts(const PromptSetSpec& s, const std::string& data_dir, uint64_t seed,
                                          const std::vector<eval::Prompt>& calibration);

// The first n (harmful, harmless) instruction pairs of refusal_direction_splits' train files.
std::vector<std::pair<std::string, std::string>> geometry_pairs(const std::string& data_dir, size_t n);

}  // namespace kvaudit::diagnose
