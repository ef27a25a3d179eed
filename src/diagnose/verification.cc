#include "diagnose/verification.h"

#include <random>
#include <stdexcept>
#include <vector>

#include "diagnose/outliers.h"
#include "diagnose/rules.h"
#include "eval/metrics.h"
#include "kv/memory.h"

namespace kvaudit::diagnose {
namespace {

double recovery_of(int64_t base, int64_t target, int64_t plan) {
  if (base == target) return eval::kNaN;
  return double(plan - target) / double(base - target);
}

}  // namespace

Recovery recovery(std::span<const bool> baseline, std::span<const bool> target, std::span<const bool> plan) {
  const size_t n = baseline.size();
  if (target.size() != n || plan.size() != n) throw std::logic_error("recovery: verdict lists differ in length");
  auto count = [](std::span<const bool> v, const std::vector<size_t>* idx) {
    int64_t k = 0;
    if (!idx) {
      for (bool b : v) k += b;
    } else {
      for (size_t i : *idx) k += v[i];
    }
    return k;
  };
  Recovery r{recovery_of(count(baseline, nullptr), count(target, nullptr), count(plan, nullptr)),
             eval::kNaN, eval::kNaN};
  if (n == 0) return r;
  std::mt19937_64 rng(rules::kBootstrapSeed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> values;
  std::vector<size_t> idx(n);
  for (int b = 0; b < rules::kBootstrapResamples; ++b) {
    for (auto& i : idx) i = pick(rng);
    const double v = recovery_of(count(baseline, &idx), count(target, &idx), count(plan, &idx));
    if (!std::isnan(v)) values.push_back(v);
  }
  if (2 * values.size() < size_t(rules::kBootstrapResamples)) return r;
  r.ci_low = percentile_linear(values, 100.0 * rules::kAlpha / 2);
  r.ci_high = percentile_linear(values, 100.0 * (1 - rules::kAlpha / 2));
  return r;
}

bool flips_within_noise(std::span<const bool> baseline, std::span<const bool> scheme, std::span<const bool> noise) {
  // Below the refusals the test can reject with it cannot reject: within, as p >= alpha says.
  return eval::noise_test(baseline, scheme, noise, rules::kAlpha).within.value_or(true);
}

int64_t min_refusals_for_noise_test() { return eval::min_refusals_to_reject(rules::kAlpha); }

double policy_bytes_per_token(const kv::KvPolicy& policy, int n_layers, kv::CacheGeometry g) {
  const int64_t ctx = rules::kMemoryContextTokens;
  double total = 0;
  for (int l = 0; l < n_layers; ++l)
    for (kv::Role r : {kv::Role::K, kv::Role::V}) {
      if (const kv::ChannelSubset* s = policy.subset(l, r))
        total += kv::subset_cache_bytes(*s, g, ctx) / double(ctx);
      else
        total += kv::bytes_per_token(policy.scheme(l, r), r, g, ctx);
    }
  return total;
}

double memory_overhead(double plan_bytes_per_token, double target_bytes_per_token) {
  return target_bytes_per_token > 0 ? plan_bytes_per_token / target_bytes_per_token - 1.0 : eval::kNaN;
}

}  // namespace kvaudit::diagnose
