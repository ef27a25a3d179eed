// The command-line side of the eval pipeline (eval/pipeline.h): its flags, results.json and its
// printing.
#pragma once
#include <CLI/CLI.hpp>

#include "cli/kv_options.h"
#include "eval/pipeline.h"

namespace kvaudit::cli {

using eval::EvalArgs;
using eval::make_scheme_runs;

// Adds every option of EvalArgs except --kv and --kv-policy (eval adds them; sweep derives the schemes).
void add_eval_options(CLI::App* cmd, EvalArgs& a);
// --no-noise-floor (eval and sweep: the commands that report flip rates of the schemes they run).
void add_noise_floor_option(CLI::App* cmd, EvalArgs& a);

// eval::run_eval_pipeline, then <a.out>/results.json (report/results_json.h); returns the results.
eval::RunResults run_eval_and_write(const EvalArgs& a, const std::vector<std::string>& kv_specs,
                                    const nlohmann::json& extra_config = nlohmann::json::object());

// The table (or with --json the results.json text) on stdout.
void print_eval_results(const EvalArgs& a, const eval::RunResults& r);

}  // namespace kvaudit::cli
