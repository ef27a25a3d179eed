#include "cli/eval_pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/engine.h"
#include "io/atomic_file.h"
#include "eval/benchmarks.h"
#include "eval/chat_prompt.h"
#include "eval/guard_judge.h"
#include "eval/judges.h"
#include "eval/ppl_runner.h"
#include "eval/progress.h"
#include "eval/results.h"
#include "eval/runner.h"
#include "eval/samples.h"
#include "eval/table.h"
#include "kv/policy.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace kvaudit::cli {


// Every flag that can change a result (SPEC.md §6 "config": all flags); presentation flags aside.
namespace {

nlohmann::json config_json(const EvalArgs& a, const std::vector<std::string>& kv_specs,
                           const std::string& data_dir) {
  return {{"model", a.model},         {"bench", a.bench},
          {"kv", kv_specs},               {"judge", a.judge},
          {"data", data_dir},         {"column", a.column},
          {"limit", a.limit},         {"seed", a.seed},
          {"dedup", !a.no_dedup},     {"max_new_tokens", a.max_new_tokens},
          {"batch_size", a.batch_size}, {"system", a.system},
          {"raw", a.raw},             {"random_weights", a.random_weights},
          {"device", a.device},       {"text", a.text},
          {"ppl_windows", a.ppl_windows},
          {"kv_storage", a.kv_storage.storage.empty() ? "simulated" : a.kv_storage.storage},
          {"compat", a.kv_storage.compat.empty() ? "none" : a.kv_storage.compat}};
}

}  // namespace

std::vector<eval::SchemeRun> make_scheme_runs(const std::vector<std::string>& specs, const KvOptions& storage,
                                              engine::Backend& backend, const std::string& model_path) {
  std::vector<eval::SchemeRun> schemes = {{"fp16", nullptr}};
  for (const auto& spec : specs) {
    if (std::any_of(schemes.begin(), schemes.end(), [&](const auto& s) { return s.name == spec; }))
      usage_error("--kv '{}' is given twice (the 16-bit baseline always runs)", spec);
    auto policy = make_kv_policy({spec, "", storage.storage, storage.compat}, backend.model().config.n_layers);
    // scale=calib, nuq, +protect: calibrated once per model, cached (cli/kv_options.h).
    schemes.push_back({spec, calibrate_if_needed(std::move(policy), backend, model_path)});
  }
  return schemes;
}

eval::RunResults run_eval_pipeline(const EvalArgs& a, const std::vector<std::string>& kv_specs,
                                   const nlohmann::json& extra_config) {
  const auto t0 = std::chrono::steady_clock::now();
  if (a.max_new_tokens < 1) usage_error("--max-new-tokens must be >= 1 (got {})", a.max_new_tokens);
  const std::string data_dir = eval::resolve_data_dir(a.data);
  const eval::JudgeSpec judge_spec = eval::parse_judge_spec(a.judge);
  make_kv_policy({"", "", a.kv_storage.storage, a.kv_storage.compat}, 0);  // bad values fail before any work

  eval::BenchSelection sel;
  for (const auto& b : a.bench) {  // --bench a,b and --bench a --bench b
    size_t pos = 0;
    while (pos <= b.size()) {
      size_t end = b.find(',', pos);
      if (end == std::string::npos) end = b.size();
      if (end > pos) sel.names.push_back(b.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  sel.data_dir = data_dir;
  sel.column = a.column;
  sel.limit = a.limit;
  sel.seed = a.seed;
  sel.dedup = !a.no_dedup;
  const eval::LoadedBenchmarks loaded = eval::load_benchmarks(sel);
  if (loaded.prompts.empty()) usage_error("--bench: the selected benchmarks hold no prompt");

  const engine::Device device = a.device.empty() ? engine::default_device() : engine::parse_device(a.device);
  const model::Model m = model::load_model(a.model, {.random_weights = a.random_weights});
  const text::Tokenizer tok = text::Tokenizer::load_for_model(a.model);

  auto backend = engine::make_backend(device, m, {a.threads});
  const std::vector<eval::SchemeRun> schemes = make_scheme_runs(kv_specs, a.kv_storage, *backend, a.model);

  std::unique_ptr<eval::GuardJudge> guard;
  std::optional<eval::PhraseJudge> phrases;
  if (judge_spec.is_model)
    guard = std::make_unique<eval::GuardJudge>(judge_spec, device, a.threads, data_dir, a.batch_size);
  else
    phrases = eval::load_phrase_judge(judge_spec, data_dir);

  eval::GenerationIo io;
  io.encode = [&](const eval::Prompt& p) { return eval::encode_chat_prompt(tok, p.text, a.system, a.raw, a.model); };
  io.decode = [&](const std::vector<int>& ids) { return tok.decode(ids, true); };
  io.judge = [&](const std::vector<const eval::Prompt*>& ps, const std::vector<std::string>& rs) {
    if (guard) return guard->judge(ps, rs);
    std::vector<eval::Verdict> v;
    for (const auto& r : rs) v.push_back(phrases->judge(r));
    return v;
  };
  io.judge_name = a.judge;

  eval::RunnerOptions opt;
  opt.gen.max_new_tokens = a.max_new_tokens;
  opt.gen.batch_size = a.batch_size;
  opt.gen.stop_ids = m.config.eos_ids;
  for (int id : tok.eos_ids())
    if (std::find(opt.gen.stop_ids.begin(), opt.gen.stop_ids.end(), id) == opt.gen.stop_ids.end())
      opt.gen.stop_ids.push_back(id);
  opt.chunk = a.chunk;

  std::filesystem::create_directories(a.out);
  const std::string samples_path = (std::filesystem::path(a.out) / "samples.jsonl").string();
  const eval::SamplesLog previous = eval::read_samples(samples_path);
  eval::SamplesWriter writer(samples_path, previous.valid_bytes);
  eval::Progress progress(a.quiet ? nullptr : stderr, ::isatty(fileno(stderr)) != 0, "eval",
                          loaded.prompts.size() * schemes.size(), "samples");
  eval::RunStats stats;
  const auto t_gen = std::chrono::steady_clock::now();
  const eval::SampleMap samples =
      eval::run_samples(*backend, loaded.prompts, schemes, io, opt, previous, writer, &progress, &stats);
  progress.finish();
  const auto t_end = std::chrono::steady_clock::now();

  // --text: perplexity and KL of each scheme on that text (SPEC.md §4), repeated in each of the
  // scheme's benchmark entries (they belong to the scheme, results.json keys them per benchmark).
  std::vector<eval::PplResult> ppl;
  if (!a.text.empty()) {
    const std::vector<int> text_tokens = tok.encode(io::read_file(a.text), true);
    eval::PplOptions popt;
    popt.max_windows = a.ppl_windows;
    ppl = eval::run_perplexity(*backend, text_tokens, schemes, popt, nullptr);
  }
  const auto t_ppl = std::chrono::steady_clock::now();

  eval::RunResults r;
  r.model = {m.path, m.config.arch, m.n_params, m.weights_sha256};
  r.config = config_json(a, kv_specs, data_dir);
  for (const auto& [k, v] : extra_config.items()) r.config[k] = v;
  r.results = eval::aggregate_results(loaded.prompts, schemes, samples);
  for (size_t i = 0; i < ppl.size(); ++i)
    for (auto& b : r.results[i].benches) {
      b.metrics.ppl = ppl[i].ppl;
      b.metrics.ppl_ratio = ppl[i].ppl_ratio;
      b.metrics.kl = ppl[i].kl;
    }
  const auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  r.timing = {{"total_s", secs(t_ppl - t0)},
              {"generate_s", secs(t_end - t_gen)},
              {"ppl_s", secs(t_ppl - t_end)},
              {"samples_generated", stats.generated},
              {"samples_resumed", stats.resumed},
              {"duplicates_dropped", loaded.duplicates_dropped}};
  eval::write_results(a.out, r);
  return r;
}

void add_eval_options(CLI::App* cmd, EvalArgs& a) {
  cmd->add_option("--model", a.model, "HF model directory or .gguf file")->required();
  cmd->add_option("--bench", a.bench, "benchmarks, comma-separated: advbench, harmbench[:contextual], jbb, "
                                       "jbb-benign, strongreject, xstest[:safe|:unsafe], custom, FILE.csv|jsonl|txt")
      ->required();
  cmd->add_option("--out", a.out, "output directory (results.json, samples.jsonl; rerun to resume)")->required();
  cmd->add_option("--judge", a.judge, "substring:paper (default), substring:jbb, substring:gcg, prefix:xstest, "
                                       "model:PATH[:wildguard|:llamaguard3]");
  cmd->add_option("--data", a.data, "datasets directory (default $KVAUDIT_DATA, else ../shared/datasets)");
  cmd->add_option("--column", a.column, "prompt column of a FILE.csv / field of a FILE.jsonl benchmark");
  cmd->add_option("--limit", a.limit, "at most N prompts per benchmark (seeded random subset)");
  cmd->add_option("--seed", a.seed, "seed of the --limit subset (default 0)");
  cmd->add_flag("--no-dedup", a.no_dedup, "keep prompts that repeat across pooled benchmarks");
  cmd->add_option("--max-new-tokens", a.max_new_tokens, "default 256");
  cmd->add_option("--batch-size", a.batch_size, "sequences per batch, default 16");
  add_kv_storage_options(cmd, a.kv_storage);
  cmd->add_option("--chunk", a.chunk, "requests per samples.jsonl flush (default 4 x batch size)");
  cmd->add_option("--text", a.text, "also measure perplexity and KL on this text (window 2048, stride 512)");
  cmd->add_option("--ppl-windows", a.ppl_windows, "with --text: score only the first N windows (0 = all)");
  cmd->add_option("--system", a.system, "system message");
  cmd->add_flag("--raw", a.raw, "no chat template");
  cmd->add_option("--device", a.device, "cpu|cuda (default: cuda when built with it)");
  cmd->add_option("--threads", a.threads, "CPU threads (default: all)");
  cmd->add_flag("--random-weights", a.random_weights, "config.json only: deterministic random weights");
  cmd->add_flag("--quiet", a.quiet, "no progress output");
  cmd->add_flag("--json", a.json, "print results.json instead of the table");
}

void print_eval_results(const EvalArgs& a, const eval::RunResults& r) {
  const std::string text = a.json ? eval::results_json(r) : eval::format_results_table(r);
  std::fputs(text.c_str(), stdout);
}

}  // namespace kvaudit::cli
