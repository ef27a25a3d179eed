// The eval loop (SPEC.md §4, issue "Safety evaluation"): every prompt under the 16-bit baseline and
// each KV scheme, all sharing batches (each sequence carries its own policy), judged, appended to
// samples.jsonl chunk by chunk, and resumed from it; then per (scheme, benchmark) metrics.
// Tokenization, chat template and judging come in as functions, so this file knows no tokenizer.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "engine/generate.h"
#include "eval/benchmarks.h"
#include "eval/judges.h"
#include "eval/progress.h"
#include "eval/results.h"
#include "eval/samples.h"
#include "kv/policy.h"

namespace kvaudit::eval {

struct SchemeRun {
  std::string name;                             // recorded in samples/results ("fp16", the --kv spec)
  std::shared_ptr<const kv::KvPolicy> policy;   // null: the 16-bit baseline
  // A --kv-policy file's scheme ("policy:FILE" names only the file): the sha256 of the plan it
  // resolved to (policy_plan_sha256), so a rerun after the file was edited reuses none of its
  // results. Empty for a --kv spec, whose name is the plan.
  std::string plan_sha256 = {};
  // The name a resumable log keys this scheme's results by: name, or name@plan_sha256.
  std::string log_key() const { return plan_sha256.empty() ? name : name + "@" + plan_sha256; }
};

// The sha256 of what a policy computes: its resolved per-site plan (KvPolicy::name) and its
// per-call scales (compat).
std::string policy_plan_sha256(const kv::KvPolicy& policy);

struct GenerationIo {
  // The user message -> prompt token ids (chat template applied, as cli decides).
  std::function<std::vector<int>(const Prompt&)> encode;
  // Generated ids (stop id excluded) -> response text.
  std::function<std::string(const std::vector<int>&)> decode;
  // Judges (prompt, response) pairs; returns one verdict per pair, in order.
  std::function<std::vector<Verdict>(const std::vector<const Prompt*>&, const std::vector<std::string>&)>
      judge;
  std::string judge_name;  // recorded in samples.jsonl
  // What beside the prompt, the scheme and the judge decides a response (model, device, template,
  // system prompt, max new tokens ...: eval/pipeline.h generation_settings), a compact JSON object
  // recorded in each sample (with a policy file's plan_sha256: sample_settings); a rerun reuses no
  // sample generated with other settings.
  std::string gen;
  // Verdict-aware early stop (docs/EVAL.md), used when both are set. new_stream() returns a fresh
  // incremental decoder for one response: push(id) -> the text that no later id can change (an
  // incomplete UTF-8 character is held back). decided(text) is true when the judge's verdict is the
  // same for every response beginning with `text` (PhraseJudge::decided); the request then stops,
  // its sample holding the text of the tokens so far and stopped_early_at = their count.
  std::function<std::function<std::string(int)>()> new_stream;
  std::function<bool(std::string_view)> decided;
};

struct RunnerOptions {
  engine::GenerateOptions gen;  // max_new_tokens, batch_size, stop_ids
  // Requests per engine::generate call; samples.jsonl is appended after each chunk, so a kill
  // loses at most one chunk. 0 = 4 × batch_size.
  size_t chunk = 0;
  // true (what `eval` does): requests are prompt-major, so one batch holds every scheme of
  // several prompts and a decode step reads the weights once for all of them. false: one scheme
  // at a time, no engine::generate call mixing schemes (the baseline of bench/eval_sharing.cc).
  // The samples are the same either way (the engine is batch-invariant, SPEC.md §4).
  bool share_batches = true;
};

using SampleMap = std::map<SampleKey, Sample>;

// The settings recorded with a sample of `scheme`: io.gen, plus "plan_sha256" for a policy file.
std::string sample_settings(const GenerationIo& io, const SchemeRun& scheme);

struct RunStats {
  size_t resumed = 0;    // samples taken from an existing samples.jsonl
  size_t generated = 0;  // samples computed now
  size_t tokens = 0;     // ids the model chose for them (stop ids included): the decode steps spent
  size_t stopped_early = 0;  // of the samples computed now, those ended by early stop
};

// Generates every (prompt, scheme) pair that `previous` lacks, requests ordered prompt-major so
// one prompt's schemes share a batch (opt.share_batches; else scheme by scheme); appends each chunk's samples to `writer`. Returns every
// sample of this run (previous ones included). UsageError when `previous` was judged by another
// judge, holds another text for a prompt id, or a sample this run would reuse was generated with
// other settings (io.gen: the data, --judge, --max-new-tokens ... changed; use a new --out).
SampleMap run_samples(engine::Backend& backend, const std::vector<Prompt>& prompts,
                      const std::vector<SchemeRun>& schemes, const GenerationIo& io,
                      const RunnerOptions& opt, const SamplesLog& previous, SamplesWriter& writer,
                      Progress* progress, RunStats* stats = nullptr);

// One response as a Responder gives it.
struct Response {
  std::string text;                      // the decoded completion
  std::optional<int> stopped_early_at;   // Sample::stopped_early_at
  size_t tokens = 0;                     // ids chosen, stop id included (RunStats::tokens); 0 if unknown
};
// Responds to one chunk of (prompts[i], schemes[i]) jobs, in order: the engine (above) or an
// OpenAI-compatible server (eval/endpoint.h).
using Responder = std::function<std::vector<Response>(const std::vector<const Prompt*>& prompts,
                                                      const std::vector<const SchemeRun*>& schemes)>;

// run_samples with any responder: `chunk` jobs per call (>= 1), ordered and resumed as above.
SampleMap run_samples(const Responder& respond, const std::vector<Prompt>& prompts,
                      const std::vector<SchemeRun>& schemes, const GenerationIo& io, size_t chunk,
                      bool share_batches, const SamplesLog& previous, SamplesWriter& writer, Progress* progress,
                      RunStats* stats = nullptr);

// Per scheme × benchmark (benchmarks in prompt order) metrics against schemes[0], the baseline.
// A missing sample is a logic_error. `data_dir`: where the IFEval items of --bench ifeval prompts
// are (their responses are scored here, BenchMetrics::ifeval).
// noise: the control scheme (a SchemeRun name, e.g. "bf16") every other non-baseline scheme's
// flips are tested against at level alpha (BenchMetrics::noise).
struct NoiseControl {
  std::string scheme;
  double alpha;
};
std::vector<SchemeResult> aggregate_results(const std::vector<Prompt>& prompts,
                                            const std::vector<SchemeRun>& schemes,
                                            const SampleMap& samples, const std::string& data_dir = "",
                                            const std::optional<NoiseControl>& noise = std::nullopt);

}  // namespace kvaudit::eval
