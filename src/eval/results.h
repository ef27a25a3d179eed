// The results of an eval run (SPEC.md §6): the model, the run's config, the metrics per (scheme,
// benchmark) and the timing. Plain data; report/results_json.h writes it as results.json and
// report/table.h prints it.
#pragma once
#include <cstdint>
#include <string>
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

}  // namespace kvaudit::eval
