// results.json (SPEC.md §6): {"kvaudit_version", "model": {path, arch, params, sha256},
// "config": {...all flags...}, "results": {scheme: {bench: {metric: value}}}, "timing": {...}}.
// Deterministic: keys in a fixed order (schemes and benchmarks in run order, metrics in SPEC
// order, config keys sorted), numbers in nlohmann's shortest round-trip form, NaN as null; two
// runs with the same inputs give the same bytes apart from "timing".
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/metrics.h"

namespace kvaudit::eval {

struct ModelInfo {
  std::string path;
  std::string arch;
  int64_t params = 0;
  std::string sha256;  // of the weight bytes
};

struct BenchResult {
  std::string bench;
  BenchMetrics metrics;
};

struct SchemeResult {
  std::string scheme;  // "fp16" baseline first, then each --kv spec as given
  std::vector<BenchResult> benches;
};

struct RunResults {
  ModelInfo model;
  nlohmann::json config;          // object; std::map-backed, so keys come out sorted
  std::vector<SchemeResult> results;
  nlohmann::ordered_json timing;  // object; whatever the command measured, in its order
};

// The metric object of one (scheme, bench), keys in SPEC.md §6 order, NaN -> null.
nlohmann::ordered_json metrics_json(const BenchMetrics& m);

// The whole document (2-space indent, trailing newline).
std::string results_json(const RunResults& r);

// Writes <dir>/results.json atomically (io::write_file_atomic).
void write_results(const std::string& dir, const RunResults& r);

}  // namespace kvaudit::eval
