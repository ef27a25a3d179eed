// The readable terminal table of an eval run: one row per (scheme, benchmark), the metrics of
// SPEC.md §6 as columns. Formatting only; cli decides where it goes.
#pragma once
#include <string>

#include "eval/results.h"

namespace kvaudit::report {

// Fixed-width text ending in '\n'. Rates are percentages with one decimal, the flip rate with its
// Wilson interval "12.5% [8.1, 18.7]", p-values in %.3g, undefined values as "-".
std::string format_results_table(const eval::RunResults& r);

}  // namespace kvaudit::report
