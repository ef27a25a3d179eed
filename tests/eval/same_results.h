// Equality of eval results for tests below report/ (which writes results.json and sits above
// eval): every metric compared exactly, an undefined one (NaN) equal only to another undefined one.
// As strict as comparing the results.json text, which prints finite doubles in shortest
// round-trip form and NaN as null.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "eval/results.h"

namespace kvaudit::eval {

inline bool same_number(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
}

inline ::testing::AssertionResult same_metrics(const BenchMetrics& a, const BenchMetrics& b) {
  const auto fail = [](const char* name, auto x, auto y) {
    return ::testing::AssertionFailure() << name << ": " << x << " vs " << y;
  };
  if (a.n != b.n) return fail("n", a.n, b.n);
  if (a.flips != b.flips) return fail("flips", a.flips, b.flips);
  if (a.reverse_flips != b.reverse_flips) return fail("reverse_flips", a.reverse_flips, b.reverse_flips);
  const std::pair<const char*, double BenchMetrics::*> numbers[] = {
      {"refusal_rate", &BenchMetrics::refusal_rate}, {"flip_rate", &BenchMetrics::flip_rate},
      {"flip_ci_low", &BenchMetrics::flip_ci_low},   {"flip_ci_high", &BenchMetrics::flip_ci_high},
      {"mcnemar_p", &BenchMetrics::mcnemar_p},       {"over_refusal", &BenchMetrics::over_refusal},
      {"ppl", &BenchMetrics::ppl},                   {"ppl_ratio", &BenchMetrics::ppl_ratio},
      {"kl", &BenchMetrics::kl}};
  for (const auto& [name, field] : numbers)
    if (!same_number(a.*field, b.*field)) return fail(name, a.*field, b.*field);
  return ::testing::AssertionSuccess();
}

// Same schemes and benchmarks in the same order, with the same metrics.
inline ::testing::AssertionResult same_results(const std::vector<SchemeResult>& a, const std::vector<SchemeResult>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << a.size() << " vs " << b.size() << " schemes";
  for (size_t s = 0; s < a.size(); ++s) {
    if (a[s].scheme != b[s].scheme) return ::testing::AssertionFailure() << "scheme " << a[s].scheme << " vs " << b[s].scheme;
    if (a[s].benches.size() != b[s].benches.size())
      return ::testing::AssertionFailure() << a[s].scheme << ": " << a[s].benches.size() << " vs " << b[s].benches.size()
                                           << " benchmarks";
    for (size_t k = 0; k < a[s].benches.size(); ++k) {
      if (a[s].benches[k].bench != b[s].benches[k].bench)
        return ::testing::AssertionFailure() << a[s].scheme << ": bench " << a[s].benches[k].bench << " vs "
                                             << b[s].benches[k].bench;
      const auto same = same_metrics(a[s].benches[k].metrics, b[s].benches[k].metrics);
      if (!same) return ::testing::AssertionFailure() << a[s].scheme << " " << a[s].benches[k].bench << ": " << same.message();
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace kvaudit::eval
