// kvaudit eval (SPEC.md §4, §6, §7): the 16-bit baseline and every --kv scheme over the benchmark
// prompts in one run, all sharing batches; refusal / conditional flip metrics per scheme and
// benchmark; results.json + samples.jsonl in --out, resumable; a table (or --json) on stdout.
#include "cli/commands.h"
#include "cli/eval_pipeline.h"
#include "core/error.h"
#include "io/out_dir_lock.h"

namespace kvaudit::cli {

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Refusal / flip metrics of each --kv scheme against the 16-bit baseline");
  auto a = std::make_shared<EvalArgs>();
  add_eval_options(cmd, *a);
  add_noise_floor_option(cmd, *a);
  cmd->add_option("--kv", a->kv, "KV scheme spec (SPEC.md §3); repeat for several; the fp16 baseline always runs")->check(kNonEmpty);
  cmd->add_option("--kv-policy", a->kv_policy,
                  "per-layer KV policy JSON file (SPEC.md §3, e.g. an audit's policy.json); repeat for several; "
                  "named policy:FILE in the results");
  cmd->add_option("--endpoint", a->endpoint,
                  "audit a running OpenAI-compatible server (vLLM, llama.cpp, kvaudit serve) at this URL instead of "
                  "the built-in engine; needs --baseline-endpoint; API key from $OPENAI_API_KEY");
  cmd->add_option("--baseline-endpoint", a->baseline_endpoint, "the 16-bit deployment to compare --endpoint with");
  cmd->add_option("--endpoint-model", a->endpoint_model, "model id sent to the endpoints (default: the first they list)");
  cmd->add_option("--endpoint-scheme", a->endpoint_scheme,
                  "name of the --endpoint deployment's scheme in the results (default: the KV plan a kvaudit server "
                  "reports, else 'endpoint')");
  cmd->add_option("--endpoint-concurrency", a->endpoint_concurrency, "requests in flight per endpoint, default 8");
  cmd->add_option("--endpoint-retries", a->endpoint_retries,
                  "retries of a failed request (connection, timeout, 429, 5xx), exponential backoff; default 5");
  cmd->add_option("--endpoint-timeout", a->endpoint_timeout, "seconds one request may take, default 600");
  cmd->callback([a, cmd] {
    // The endpoint options mean nothing to the built-in engine.
    if (a->endpoint.empty() && a->baseline_endpoint.empty())
      for (const char* name : {"--endpoint-model", "--endpoint-scheme", "--endpoint-concurrency", "--endpoint-retries",
                               "--endpoint-timeout"})
        if (cmd->get_option(name)->count() > 0) usage_error("{} applies to --endpoint runs only", name);
    const io::OutDirLock lock(a->out);  // one writer per --out (io/out_dir_lock.h)
    print_eval_results(*a, run_eval_and_write(*a, a->kv));
  });
}

}  // namespace kvaudit::cli
