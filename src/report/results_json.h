// results.json (SPEC.md §6): {"kvaudit_version", "model": {path, arch, params, sha256},
// "config": {...all flags...}, "results": {scheme: {bench: {metric: value}}}, "timing": {...}}.
// Deterministic: keys in a fixed order (schemes and benchmarks in run order, metrics in SPEC
// order, config keys sorted), numbers in nlohmann's shortest round-trip form, NaN as null; two
// runs with the same inputs give the same bytes apart from "timing".
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "eval/metrics.h"
#include "eval/results.h"

namespace kvaudit::report {

// The metric object of one (scheme, bench), keys in SPEC.md §6 order, NaN -> null.
nlohmann::ordered_json metrics_json(const eval::BenchMetrics& m);

// The whole document (2-space indent, trailing newline).
std::string results_json(const eval::RunResults& r);

// Writes <dir>/results.json atomically (io::write_file_atomic).
void write_results(const std::string& dir, const eval::RunResults& r);

}  // namespace kvaudit::report
