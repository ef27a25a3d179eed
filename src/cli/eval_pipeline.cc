#include "cli/eval_pipeline.h"

#include <cstdio>

#include "cli/commands.h"
#include "diagnose/rules.h"
#include "report/results_json.h"
#include "report/table.h"

namespace kvaudit::cli {

void add_eval_options(CLI::App* cmd, EvalArgs& a) {
  cmd->add_option("--model", a.model, kModelHelp);  // required unless eval --endpoint (eval/pipeline.cc)
  cmd->add_option("--bench", a.bench, "benchmarks, comma-separated: advbench, harmbench[:contextual], jbb, "
                                       "jbb-benign, strongreject, xstest[:safe|:unsafe], custom, ifeval (capability: scored by "
                                       "the IFEval scorer, not the refusal judge), FILE.csv|jsonl|txt")
      ->required();
  cmd->add_option("--out", a.out, "output directory (results.json, samples.jsonl; rerun to resume; one run at a time: "
                                   "a second run on the same --out stops with exit 2)")->required();
  cmd->add_option("--judge", a.judge, "substring:paper (default), substring:jbb, substring:gcg, prefix:xstest, "
                                       "model:PATH[:wildguard|:llamaguard3]");
  cmd->add_option("--data", a.data, "datasets directory (default $KVAUDIT_DATA, else ../shared/datasets)");
  cmd->add_option("--column", a.column, "prompt column of a FILE.csv / field of a FILE.jsonl benchmark");
  cmd->add_option("--limit", a.limit, "at most N prompts per benchmark (seeded random subset; default all)")->check(kPositiveCount);
  cmd->add_option("--seed", a.seed, "seed of the --limit subset (default 0)")->check(kCount);
  cmd->add_flag("--no-dedup", a.no_dedup, "keep prompts that repeat across pooled benchmarks");
  cmd->add_option("--max-new-tokens", a.max_new_tokens, "default 256; 1024 when --bench names ifeval (the paper's IFEval length)")
      ->check(kPositiveInt);
  cmd->add_flag("--full-responses", a.full_responses, "no early stop: generate every response to a stop id or --max-new-tokens");
  add_batch_size_option(cmd, a.batch_size);
  add_kv_storage_options(cmd, a.kv_storage);
  cmd->add_option("--chunk", a.chunk, "requests per samples.jsonl flush (default 4 x batch size)")->check(kPositiveCount);
  cmd->add_option("--text", a.text, "also measure perplexity and KL on this text (window 2048, stride 512)");
  cmd->add_option("--ppl-windows", a.ppl_windows, "with --text: score only the first N windows (0 = all)")->check(kCount);
  auto* system = cmd->add_option("--system", a.system, "system message (\"\": an empty system turn; left out, the chat template's default)");
  cmd->add_flag("--raw", a.raw, "no chat template: the prompt text as is (so no --system)")->excludes(system);
  cmd->add_option("--device", a.device, "cpu|cuda (default: cuda when built with it)");
  add_threads_option(cmd, a.threads);
  cmd->add_flag("--random-weights", a.random_weights, "config.json only: deterministic random weights");
  cmd->add_flag("--quiet", a.quiet, "no progress output");
  cmd->add_flag("--json", a.json, "print results.json instead of the table");
}

void add_noise_floor_option(CLI::App* cmd, EvalArgs& a) {
  cmd->add_flag("--no-noise-floor", a.no_noise_floor,
                "skip the bf16 control (K and V rounded to bf16: numerical noise alone) that otherwise runs beside "
                "the schemes, each scheme's flips tested against its (noise_flips, vs_noise_p, within_noise)");
  a.noise_scheme = std::string(diagnose::rules::kNoiseScheme);
  a.noise_alpha = diagnose::rules::kAlpha;
}

eval::RunResults run_eval_and_write(const EvalArgs& a, const std::vector<std::string>& kv_specs,
                                    const nlohmann::json& extra_config) {
  eval::RunResults r = eval::run_eval_pipeline(a, kv_specs, extra_config);
  report::write_results(a.out, r);
  return r;
}

void print_eval_results(const EvalArgs& a, const eval::RunResults& r) {
  const std::string text = a.json ? report::results_json(r) : report::format_results_table(r);
  std::fputs(text.c_str(), stdout);
}

}  // namespace kvaudit::cli
