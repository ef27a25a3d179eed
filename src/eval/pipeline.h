// The eval pipeline shared by `kvaudit eval` and `kvaudit sweep` (SPEC.md §4, §6, §7): load the
// benchmarks, model, tokenizer and judge; run the 16-bit baseline and the given schemes sharing
// batches, resuming from --out/samples.jsonl; write results.json. Printing is the command's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/kv_options.h"
#include "engine/engine.h"
#include "eval/results.h"
#include "eval/runner.h"

namespace kvaudit::cli {

struct EvalArgs {
  std::string model, out, judge = "substring:paper", data, column, system, device, text;
  std::vector<std::string> bench, kv;
  KvOptions kv_storage;  // --kv-storage, --compat only (spec / policy unused): apply to every scheme
  size_t limit = 0;
  uint64_t seed = 0;
  int max_new_tokens = 256, batch_size = 16, threads = 0;
  size_t chunk = 0, ppl_windows = 0;
  bool no_dedup = false, raw = false, random_weights = false, quiet = false, json = false;
};

// Adds every option of EvalArgs except --kv (eval adds it; sweep derives the schemes).
void add_eval_options(CLI::App* cmd, EvalArgs& a);

// The fp16 baseline (policy null) then one run per spec, in order, with --kv-storage / --compat
// applied and calibrated schemes calibrated on `backend` (cli/kv_options.h). Shared by eval, sweep
// and ppl. UsageError for a bad spec or one given twice.
std::vector<eval::SchemeRun> make_scheme_runs(const std::vector<std::string>& specs, const KvOptions& storage,
                                              engine::Backend& backend, const std::string& model_path);

// Runs the pipeline for the fp16 baseline plus kv_specs; writes <out>/results.json and returns it.
// extra_config: the calling command's own flags, added to results.json "config".
eval::RunResults run_eval_pipeline(const EvalArgs& a, const std::vector<std::string>& kv_specs,
                                   const nlohmann::json& extra_config = nlohmann::json::object());

// The table (or with --json the results.json text) on stdout.
void print_eval_results(const EvalArgs& a, const eval::RunResults& r);

}  // namespace kvaudit::cli
