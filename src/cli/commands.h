// Each command lives in its own cmd_<name>.cc and adds itself to the app here.
// A command's callback throws; only main.cc catches and maps errors to exit codes.
#pragma once
#include <CLI/CLI.hpp>

namespace kvaudit::cli {

void add_generate(CLI::App& app);
void add_logits(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_template(CLI::App& app);
void add_kv(CLI::App& app);
void add_eval(CLI::App& app);
void add_sweep(CLI::App& app);
void add_ppl(CLI::App& app);
void add_diagnose(CLI::App& app);
void add_audit(CLI::App& app);
void add_screen(CLI::App& app);
void add_bench(CLI::App& app);

}  // namespace kvaudit::cli
