// kvaudit eval (SPEC.md §4, §6, §7): the 16-bit baseline and every --kv scheme over the benchmark
// prompts in one run, all sharing batches; refusal / conditional flip metrics per scheme and
// benchmark; results.json + samples.jsonl in --out, resumable; a table (or --json) on stdout.
#include "cli/commands.h"
#include "cli/eval_pipeline.h"
#include "io/out_dir_lock.h"

namespace kvaudit::cli {

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Refusal / flip metrics of each --kv scheme against the 16-bit baseline");
  auto a = std::make_shared<EvalArgs>();
  add_eval_options(cmd, *a);
  cmd->add_option("--kv", a->kv, "KV scheme spec (SPEC.md §3); repeat for several; the fp16 baseline always runs");
  cmd->add_option("--kv-policy", a->kv_policy,
                  "per-layer KV policy JSON file (SPEC.md §3, e.g. an audit's policy.json); repeat for several; "
                  "named policy:FILE in the results");
  cmd->callback([a] {
    const io::OutDirLock lock(a->out);  // one writer per --out (io/out_dir_lock.h)
    print_eval_results(*a, run_eval_and_write(*a, a->kv));
  });
}

}  // namespace kvaudit::cli
