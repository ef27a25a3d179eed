// The eval pipeline shared by `eval`, `sweep`, `ppl`, `diagnose` and `audit` (SPEC.md §4-§7): an
// EvalSession loads the model, tokenizer, backend and judge once and runs any prompts under any
// schemes sharing batches, resuming from a samples.jsonl; run_eval_pipeline is `eval` on top of it
// (benchmarks -> samples -> metrics -> RunResults). Writing results.json and printing are the
// command's (report/results_json.h, report/table.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/kv_setup.h"
#include "engine/engine.h"
#include "eval/guard_judge.h"
#include "eval/judges.h"
#include "eval/results.h"
#include "eval/runner.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace kvaudit::eval {

struct EvalArgs {
  std::string model, out, judge = "substring:paper", data, column, device, text;
  // --system: a system turn before the user's; given as "", an empty one (a chat template inserts
  // its own default system turn only when there is none).
  std::optional<std::string> system;
  bool system_turn_is_empty() const { return system && system->empty(); }  // --system ""
  std::vector<std::string> bench, kv;
  std::vector<std::string> kv_policy;  // --kv-policy FILE.json, repeatable: each is a scheme run named "policy:FILE"
  KvOptions kv_storage;  // --kv-storage, --compat only (spec / policy unused): apply to every scheme
  size_t limit = 0;
  uint64_t seed = 0;
  // max_new_tokens 0: resolved_max_new_tokens; batch_size 0: the backend's (EvalSession resolves it)
  int max_new_tokens = 0, batch_size = 0, threads = 0;
  size_t chunk = 0, ppl_windows = 0;
  bool no_dedup = false, raw = false, random_weights = false, quiet = false, json = false;
  bool full_responses = false;  // --full-responses: no verdict-aware early stop (docs/EVAL.md)
  // The noise floor (SPEC.md §5), on unless --no-noise-floor: with any scheme to test, the control
  // noise_scheme (bf16) also runs and every scheme's flips are tested against its at noise_alpha
  // (the cli sets both from diagnose/rules.h).
  bool no_noise_floor = false;
  std::string noise_scheme = "bf16";
  double noise_alpha = 0.05;
  // Endpoint audit (SPEC.md §4, eval/endpoint.h): responses from running OpenAI-compatible servers
  // instead of the engine; endpoint_scheme names the deployment's scheme ("" = what the server
  // reports, else "endpoint").
  std::string endpoint, baseline_endpoint, endpoint_model, endpoint_scheme;
  int endpoint_concurrency = 8, endpoint_retries = 5;
  double endpoint_timeout = 600;
};

// --max-new-tokens as given, else 1024 when --bench names ifeval (the paper's IFEval length), else
// 256 (SPEC.md §4). UsageError for a negative value.
int resolved_max_new_tokens(const EvalArgs& a);

// GenerationIo::gen: what beside the prompt, the scheme and the judge decides a response: the
// model (canonical path; random weights; the weights' SHA-256 when given: a file replaced at the
// same path is another model), the device, the chat template or --raw, --compat, the system prompt
// and max new tokens; for an endpoint run the served model, the template or --raw, the system prompt
// and max new tokens. Not the batch size, threads, --kv-storage or early stop: they change no verdict.
std::string generation_settings(const EvalArgs& a, engine::Device device, int max_new_tokens,
                                const std::string& endpoint_model = "", const std::string& weights_sha256 = "");

// The fp16 baseline (policy null) then one run per spec, in order, then one per --kv-policy file
// (named "policy:FILE"), with --kv-storage / --compat
// applied and calibrated schemes calibrated on `backend` (cli/kv_options.h). Shared by eval, sweep
// and ppl. UsageError for a bad spec or one given twice.
std::vector<SchemeRun> make_scheme_runs(const std::vector<std::string>& specs, const KvOptions& storage,
                                        engine::Backend& backend, const std::string& model_path,
                                        const std::vector<std::string>& policy_files = {});

// Loads once what every run needs; the backend is batch-invariant, so which runs share a batch
// never changes a sample.
class EvalSession {
 public:
  // Reads a's model, device, threads, judge, data, system, raw, generation and storage options
  // (not bench/out/kv). UsageError for bad values, before the model loads.
  explicit EvalSession(const EvalArgs& a);
  ~EvalSession();

  const EvalArgs& args() const { return a_; }
  const std::string& data_dir() const { return data_dir_; }
  const model::Model& model() const { return *model_; }
  const text::Tokenizer& tokenizer() const { return *tok_; }
  engine::Backend& backend() { return *backend_; }
  const GenerationIo& io() const { return io_; }
  const RunnerOptions& runner_options() const { return opt_; }

  // A scheme run from a policy: --kv-storage / --compat applied, calibrated if it needs it.
  SchemeRun scheme(const std::string& name, const kv::KvPolicy& policy);
  // Same from a spec string (named by the spec).
  SchemeRun scheme(const std::string& spec);

  // Every (prompt, scheme) pair that `samples_path` lacks is generated and appended to it; returns
  // all of them. `label` names the progress line. Several stages may share one samples.jsonl.
  // max_new_tokens > 0 overrides the session's for this run (audit's IFEval capability check).
  SampleMap run(const std::vector<Prompt>& prompts, const std::vector<SchemeRun>& schemes,
                const std::string& samples_path, const std::string& label, RunStats* stats = nullptr,
                int max_new_tokens = 0);

 private:
  EvalArgs a_;
  std::string data_dir_;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<text::Tokenizer> tok_;
  std::unique_ptr<engine::Backend> backend_;
  std::unique_ptr<GuardJudge> guard_;
  std::unique_ptr<PhraseJudge> phrases_;
  engine::Device device_ = engine::Device::kCpu;
  GenerationIo io_;
  RunnerOptions opt_;
};

// --bench a,b and --bench a --bench b, with the session's data dir, column, limit, seed, dedup.
LoadedBenchmarks load_selected_benchmarks(const EvalArgs& a, const std::string& data_dir);

// `eval --endpoint`: the benchmarks' prompts sent to a.baseline_endpoint (the "fp16" baseline) and
// a.endpoint (the deployment's scheme), judged and aggregated as run_eval_pipeline does; resumable
// from <a.out>/samples.jsonl. Responses run to a stop or --max-new-tokens (no early stop: a server
// returns text, not the token ids early stop counts). UsageError for engine-only flags (--kv,
// --kv-policy, --text).
RunResults run_endpoint_eval(const EvalArgs& a, const std::vector<std::string>& kv_specs,
                             const nlohmann::json& extra_config = nlohmann::json::object());

// Runs the pipeline for the fp16 baseline plus kv_specs (samples.jsonl in a.out) and returns the
// results; the caller writes results.json. extra_config: the calling command's own flags, added to
// the results' "config".
RunResults run_eval_pipeline(const EvalArgs& a, const std::vector<std::string>& kv_specs,
                                   const nlohmann::json& extra_config = nlohmann::json::object());

}  // namespace kvaudit::eval
