// Verifying a plan (SPEC.md §5 "Mitigation and verification"): recovery with its interval, the
// noise-floor test, and real-byte memory overhead.
#pragma once
#include <span>
#include <string>

#include "eval/metrics.h"
#include "kv/cache.h"
#include "kv/policy.h"

namespace kvaudit::diagnose {

struct Recovery {
  double value;    // (refusal_plan - refusal_target) / (refusal_baseline - refusal_target); NaN if 0/0
  double ci_low;   // 95% paired bootstrap percentile interval over prompts (rules::kBootstrap*);
  double ci_high;  // NaN when fewer than half the resamples have a defined value
};

// Verdicts per prompt (true = refused), same prompts in the same order in all three.
Recovery recovery(std::span<const bool> baseline, std::span<const bool> target, std::span<const bool> plan);

using eval::flip_difference_p;  // eval/metrics.h: scheme a's flips against scheme b's, exact McNemar

// A scheme's flips are within the noise floor when it flips no more prompts than the `noise` control
// does, or the difference is not significant at rules::kAlpha.
bool flips_within_noise(std::span<const bool> baseline, std::span<const bool> scheme, std::span<const bool> noise);

// The fewest baseline refusals with which that test can reject at all (every one flipped under a
// scheme, none under the control: p = 2 · 2^-n < rules::kAlpha, 6 at 0.05). With fewer, "within the
// noise floor" holds for every scheme, a 100% flip rate included, and says nothing.
int64_t min_refusals_for_noise_test();

// Real bytes per token of a policy over all layers, K and V (codes, scales, zero points, residual;
// kv/memory.h), for a prefill of rules::kMemoryContextTokens tokens. Channel subsets are counted by
// kv::subset_cache_bytes.
double policy_bytes_per_token(const kv::KvPolicy& policy, int n_layers, kv::CacheGeometry g);

// plan / target - 1.
double memory_overhead(double plan_bytes_per_token, double target_bytes_per_token);

}  // namespace kvaudit::diagnose
