// The command-line side of the eval pipeline (eval/pipeline.h): its flags and its printing.
#pragma once
#include <CLI/CLI.hpp>

#include "cli/kv_options.h"
#include "eval/pipeline.h"

namespace kvaudit::cli {

using eval::EvalArgs;
using eval::make_scheme_runs;
using eval::run_eval_pipeline;

// Adds every option of EvalArgs except --kv and --kv-policy (eval adds them; sweep derives the schemes).
void add_eval_options(CLI::App* cmd, EvalArgs& a);

// The table (or with --json the results.json text) on stdout.
void print_eval_results(const EvalArgs& a, const eval::RunResults& r);

}  // namespace kvaudit::cli
