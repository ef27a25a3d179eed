#include "eval/pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/engine.h"
#include "eval/benchmarks.h"
#include "eval/chat_prompt.h"
#include "eval/endpoint.h"
#include "eval/ifeval/bench_metrics.h"
#include "eval/ppl_log.h"
#include "eval/ppl_runner.h"
#include "eval/progress.h"
#include "eval/samples.h"
#include "io/atomic_file.h"
#include "kv/policy.h"
#include "text/utf8.h"

namespace kvaudit::eval {

// Every flag that can change a result (SPEC.md §6 "config": all flags); presentation flags aside.
namespace {

// The prompt tokens auto_batch_size assumes before the benchmarks are read (their chat-formatted
// prompts are shorter; the estimate only caps a GPU's batch by its memory).
constexpr int64_t kPromptTokensForBatch = 1024;

std::vector<std::string> bench_names(const EvalArgs& a);

// device: the one that ran (--device left out is resolved), null for an endpoint run.
nlohmann::json config_json(const EvalArgs& a, const std::vector<std::string>& kv_specs,
                           const std::string& data_dir, const nlohmann::json& device, const std::string& noise_scheme) {
  return {{"model", a.model},         {"bench", bench_names(a)},
          {"kv", kv_specs},           {"kv_policy", a.kv_policy},
          {"judge", a.judge},
          {"data", data_dir},         {"column", a.column},
          {"limit", a.limit},         {"seed", a.seed},
          {"dedup", !a.no_dedup},     {"max_new_tokens", a.max_new_tokens},
          {"batch_size", a.batch_size}, {"system", a.system.value_or("")},
          {"raw", a.raw},             {"random_weights", a.random_weights},
          {"device", device},         {"text", a.text},
          {"full_responses", a.full_responses},
          {"noise_floor", noise_scheme.empty() ? nlohmann::json(nullptr) : nlohmann::json(noise_scheme)},
          {"ppl_windows", a.ppl_windows},
          {"kv_storage", a.kv_storage.storage.empty() ? "simulated" : a.kv_storage.storage},
          {"compat", a.kv_storage.compat.empty() ? "none" : a.kv_storage.compat},
          {"empty_system_turn", a.system_turn_is_empty()}};
}

}  // namespace

std::vector<SchemeRun> make_scheme_runs(const std::vector<std::string>& specs, const KvOptions& storage,
                                        engine::Backend& backend, const std::string& model_path,
                                        const std::vector<std::string>& policy_files) {
  require_scheme_for_storage(!specs.empty() || !policy_files.empty(), storage);
  std::vector<SchemeRun> schemes = {{"fp16", nullptr}};
  std::map<std::string, std::string> canonical = {{"fp16", "fp16"}};  // canonical name -> the spec as given
  for (const auto& spec : specs) {
    if (std::any_of(schemes.begin(), schemes.end(), [&](const auto& s) { return s.name == spec; }))
      usage_error("--kv '{}' is given twice (the 16-bit baseline always runs)", spec);
    // Two spellings of one scheme ("int4", "int4:token:asym") would generate the same samples twice.
    const auto [it, fresh] = canonical.emplace(kv::KvPolicy::parse(spec).name(), spec);
    if (!fresh)
      usage_error("--kv '{}' is the same scheme as {} ({}){}", spec, it->second == "fp16" ? "the baseline" : "'" + it->second + "'",
                  it->first, it->second == "fp16" ? ", which always runs" : "");
    auto policy = make_kv_policy({spec, "", storage.storage, storage.compat}, backend.model().config.n_layers);
    // scale=calib, nuq, +protect: calibrated once per model, cached (eval/kv_setup.h).
    schemes.push_back({spec, calibrate_if_needed(std::move(policy), backend, model_path)});
  }
  for (const std::string& file : policy_files) {
    const std::string name = "policy:" + file;
    if (std::any_of(schemes.begin(), schemes.end(), [&](const auto& s) { return s.name == name; }))
      usage_error("--kv-policy '{}' is given twice", file);
    auto policy = make_kv_policy({"", file, storage.storage, storage.compat}, backend.model().config.n_layers,
                                 backend.model().weights_sha256);
    const std::string plan = policy_plan_sha256(*policy);
    schemes.push_back({name, calibrate_if_needed(std::move(policy), backend, model_path), plan});
  }
  return schemes;
}

namespace {
std::vector<std::string> bench_names(const EvalArgs& a) {
  std::vector<std::string> names;
  for (const auto& b : a.bench) {  // --bench a,b and --bench a --bench b
    size_t pos = 0;
    while (pos <= b.size()) {
      size_t end = b.find(',', pos);
      if (end == std::string::npos) end = b.size();
      if (end > pos) names.push_back(b.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  return names;
}
}  // namespace

int resolved_max_new_tokens(const EvalArgs& a) {
  if (a.max_new_tokens < 0) usage_error("--max-new-tokens must be >= 1 (got {})", a.max_new_tokens);
  if (a.max_new_tokens > 0) return a.max_new_tokens;
  const auto names = bench_names(a);
  return std::find(names.begin(), names.end(), ifeval::kBench) != names.end() ? ifeval::kMaxNewTokens : 256;
}

LoadedBenchmarks load_selected_benchmarks(const EvalArgs& a, const std::string& data_dir) {
  BenchSelection sel;
  sel.names = bench_names(a);
  sel.data_dir = data_dir;
  sel.column = a.column;
  sel.limit = a.limit;
  sel.seed = a.seed;
  sel.dedup = !a.no_dedup;
  return load_benchmarks(sel);
}

std::vector<int> encode_text_file(const text::Tokenizer& tok, const std::string& path) {
  const std::string text = io::read_file(path);
  if (const size_t at = text::utf8_invalid_at(text); at != std::string_view::npos)
    usage_error("--text {} is not valid UTF-8 (byte {})", path, at);
  return tok.encode(text, true);
}

std::string generation_settings(const EvalArgs& a, engine::Device device, int max_new_tokens,
                                const std::string& endpoint_model, const std::string& weights_sha256) {
  nlohmann::json j;
  if (!a.endpoint.empty() || !a.baseline_endpoint.empty()) {
    // The served model, not the URLs: a server restarted on another port serves the same responses.
    j = {{"endpoint_model", endpoint_model}};
  } else {
    std::error_code ec;
    const std::filesystem::path canonical = std::filesystem::weakly_canonical(a.model, ec);
    j = {{"model", ec ? a.model : canonical.string()},
         {"random_weights", a.random_weights},
         {"device", engine::device_name(device)},
         {"compat", a.kv_storage.compat.empty() ? "none" : a.kv_storage.compat}};
    if (!weights_sha256.empty()) j["weights_sha256"] = weights_sha256;
  }
  j["template"] = a.raw ? "raw" : "chat";
  j["system"] = a.system.value_or("");
  // Only when given: keys written before --system "" meant an empty turn stay the same.
  if (a.system_turn_is_empty()) j["empty_system_turn"] = true;
  j["max_new_tokens"] = max_new_tokens;
  // Only when given, as above: an early-stopped response is not a full one (docs/EVAL.md).
  if (a.full_responses) j["full_responses"] = true;
  // A path or prompt that is not UTF-8 is shown with U+FFFD (the comparison sees the same bytes).
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

EvalSession::EvalSession(const EvalArgs& a) : a_(a) {
  if (a_.model.empty()) usage_error("--model is required (or --endpoint URL for eval)");
  a_.max_new_tokens = resolved_max_new_tokens(a_);
  data_dir_ = resolve_data_dir(a_.data);
  const JudgeSpec judge_spec = parse_judge_spec(a_.judge);
  make_kv_policy({"", "", a_.kv_storage.storage, a_.kv_storage.compat}, 0);  // bad values fail before any work
  const engine::Device device = a_.device.empty() ? engine::default_device() : engine::parse_device(a_.device);
  device_ = device;
  if (a_.ppl_windows > 0 && a_.text.empty()) usage_error("--ppl-windows {} needs --text", a_.ppl_windows);
  model::LoadOptions load;
  load.random_weights = a_.random_weights;
  model_ = std::make_unique<model::Model>(model::load_model(a_.model, load));
  tok_ = std::make_unique<text::Tokenizer>(text::Tokenizer::load_for_model(a_.model));
  backend_ = engine::make_backend(device, *model_, {a_.threads});
  if (a_.batch_size < 0) usage_error("--batch-size must be >= 1 (got {})", a_.batch_size);
  if (a_.batch_size == 0) a_.batch_size = backend_->auto_batch_size(a_.max_new_tokens + kPromptTokensForBatch);

  if (judge_spec.is_model)
    guard_ = std::make_unique<GuardJudge>(judge_spec, device, a_.threads, data_dir_, a_.batch_size);
  else
    phrases_ = std::make_unique<PhraseJudge>(load_phrase_judge(judge_spec, data_dir_));

  io_.encode = [this](const Prompt& p) { return encode_chat_prompt(*tok_, p.text, a_.system, a_.raw, a_.model); };
  io_.decode = [this](const std::vector<int>& ids) { return tok_->decode(ids, true); };
  io_.judge = [this](const std::vector<const Prompt*>& ps, const std::vector<std::string>& rs) {
    // IFEval prompts are scored for instruction following, not judged for refusal; `matched`
    // carries the scorer's summary into samples.jsonl.
    std::vector<Verdict> v(ps.size());
    std::vector<const Prompt*> rest_p;
    std::vector<std::string> rest_r;
    std::vector<size_t> rest_i;
    for (size_t i = 0; i < ps.size(); ++i) {
      if (ps[i]->bench == ifeval::kBench) {
        v[i] = {false, ifeval::verdict_summary(ifeval::score(ifeval::item_of(data_dir_, ps[i]->id), rs[i]))};
      } else if (!guard_) {
        v[i] = phrases_->judge(rs[i]);
      } else {
        rest_p.push_back(ps[i]);
        rest_r.push_back(rs[i]);
        rest_i.push_back(i);
      }
    }
    if (!rest_p.empty()) {
      const std::vector<Verdict> g = guard_->judge(rest_p, rest_r);
      for (size_t k = 0; k < rest_i.size(); ++k) v[rest_i[k]] = g[k];
    }
    return v;
  };
  io_.judge_name = a_.judge;
  if (phrases_ && !a_.full_responses) {  // verdict-aware early stop; a guard model reads whole responses
    io_.new_stream = [this] {
      return [d = std::make_shared<text::StreamDecoder>(*tok_, true)](int id) { return d->push(id); };
    };
    io_.decided = [this](std::string_view text) { return phrases_->decided(text); };
  }

  opt_.gen.max_new_tokens = a_.max_new_tokens;
  opt_.gen.batch_size = a_.batch_size;
  opt_.gen.stop_ids = model_->config.eos_ids;
  for (int id : tok_->eos_ids())
    if (std::find(opt_.gen.stop_ids.begin(), opt_.gen.stop_ids.end(), id) == opt_.gen.stop_ids.end())
      opt_.gen.stop_ids.push_back(id);
  opt_.chunk = a_.chunk;
}

EvalSession::~EvalSession() = default;

SchemeRun EvalSession::scheme(const std::string& name, const kv::KvPolicy& policy) {
  auto p = std::make_shared<kv::KvPolicy>(policy);
  p->validate(model_->config.n_layers);
  const auto storage = make_kv_policy({"", "", a_.kv_storage.storage, a_.kv_storage.compat}, 0);
  if (!a_.kv_storage.storage.empty()) p->set_storage(storage->storage());
  if (!a_.kv_storage.compat.empty()) p->set_compat_paper(storage->compat_paper());
  return {name, calibrate_if_needed(std::move(p), *backend_, a_.model)};
}

SchemeRun EvalSession::scheme(const std::string& spec) {
  return {spec, calibrate_if_needed(make_kv_policy({spec, "", a_.kv_storage.storage, a_.kv_storage.compat},
                                                   model_->config.n_layers),
                                    *backend_, a_.model)};
}

SampleMap EvalSession::run(const std::vector<Prompt>& prompts, const std::vector<SchemeRun>& schemes,
                           const std::string& samples_path, const std::string& label, RunStats* stats,
                           int max_new_tokens) {
  std::filesystem::create_directories(std::filesystem::path(samples_path).parent_path());
  const SamplesLog previous = read_samples(samples_path);
  SamplesWriter writer(samples_path, previous.valid_bytes);
  Progress progress(a_.quiet ? nullptr : stderr, ::isatty(fileno(stderr)) != 0, label,
                    prompts.size() * schemes.size(), "samples");
  // Early stop knows refusal verdicts only: IFEval responses always run to a stop id or the limit.
  GenerationIo io = io_;
  if (std::any_of(prompts.begin(), prompts.end(), [](const Prompt& p) { return p.bench == ifeval::kBench; })) {
    io.decided = nullptr;
    io.new_stream = nullptr;
  }
  RunnerOptions opt = opt_;
  if (max_new_tokens > 0) opt.gen.max_new_tokens = max_new_tokens;
  io.gen = generation_settings(a_, device_, opt.gen.max_new_tokens, "", model_->weights_sha256);
  SampleMap out = run_samples(*backend_, prompts, schemes, io, opt, previous, writer, &progress, stats);
  progress.finish();
  return out;
}

RunResults run_eval_pipeline(const EvalArgs& args, const std::vector<std::string>& kv_specs,
                             const nlohmann::json& extra_config) {
  const auto t0 = std::chrono::steady_clock::now();
  EvalArgs a = args;
  a.max_new_tokens = resolved_max_new_tokens(a);
  if (!a.endpoint.empty() || !a.baseline_endpoint.empty()) return run_endpoint_eval(a, kv_specs, extra_config);
  const LoadedBenchmarks loaded = load_selected_benchmarks(a, resolve_data_dir(a.data));
  if (loaded.prompts.empty()) usage_error("--bench: the selected benchmarks hold no prompt");

  // The noise floor: the bf16 control runs beside the schemes (unless one of them already is it),
  // when there is a scheme to test against it.
  std::vector<std::string> specs = kv_specs;
  std::optional<NoiseControl> noise;
  if (a.no_noise_floor && kv_specs.empty() && a.kv_policy.empty())
    usage_error("--no-noise-floor: no --kv / --kv-policy scheme is given, so no noise-floor control would run");
  if (!a.no_noise_floor && (!kv_specs.empty() || !a.kv_policy.empty())) {
    const std::string control = kv::KvPolicy::parse(a.noise_scheme).name();
    const auto given = std::find_if(specs.begin(), specs.end(),
                                    [&](const std::string& s) { return kv::KvPolicy::parse(s).name() == control; });
    noise = NoiseControl{given == specs.end() ? control : *given, a.noise_alpha};
    if (given == specs.end()) specs.push_back(control);
  }
  EvalSession session(a);
  const std::vector<SchemeRun> schemes =
      make_scheme_runs(specs, a.kv_storage, session.backend(), a.model, a.kv_policy);

  // --text is read and checked before generation: a text too short to score fails at once.
  PplOptions popt;
  popt.max_windows = a.ppl_windows;
  std::vector<int> text_tokens;
  if (!a.text.empty()) {
    text_tokens = encode_text_file(session.tokenizer(), a.text);
    require_ppl_windows(text_tokens.size(), popt, a.text);
  }

  RunStats stats;
  const auto t_gen = std::chrono::steady_clock::now();
  const SampleMap samples = session.run(loaded.prompts, schemes,
                                        (std::filesystem::path(a.out) / "samples.jsonl").string(), "eval", &stats);
  const auto t_end = std::chrono::steady_clock::now();

  // --text: perplexity and KL of each scheme on that text (SPEC.md §4), repeated in each of the
  // scheme's benchmark entries (they belong to the scheme, results.json keys them per benchmark).
  std::vector<PplResult> ppl;
  if (!a.text.empty()) {
    // Resumable as `ppl --out`: each finished window is appended to DIR/ppl_windows.jsonl.
    Progress progress(a.quiet ? nullptr : stderr, ::isatty(fileno(stderr)) != 0, "perplexity",
                      ppl_window_count(text_tokens.size(), popt) * schemes.size(), "window-passes");
    ppl = run_perplexity_logged(session.backend(), text_tokens, schemes, popt, &progress,
                                (std::filesystem::path(a.out) / "ppl_windows.jsonl").string(),
                                ppl_log_header(a.model, a.text, text_tokens, popt, schemes, session.backend().device()),
                                /*replace_other_run=*/true);
    progress.finish();
  }
  const auto t_ppl = std::chrono::steady_clock::now();

  const model::Model& m = session.model();
  RunResults r;
  r.model = {m.path, m.config.arch, m.n_params, m.weights_sha256};
  r.config = config_json(session.args(), kv_specs, session.data_dir(), engine::device_name(session.backend().device()),
                         noise ? noise->scheme : "");
  for (const auto& [k, v] : extra_config.items()) r.config[k] = v;
  r.results = aggregate_results(loaded.prompts, schemes, samples, session.data_dir(), noise);
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
              {"tokens_generated", stats.tokens},
              {"samples_stopped_early", stats.stopped_early},
              {"duplicates_dropped", loaded.duplicates_dropped}};
  return r;
}

RunResults run_endpoint_eval(const EvalArgs& a, const std::vector<std::string>& kv_specs,
                             const nlohmann::json& extra_config) {
  const auto t0 = std::chrono::steady_clock::now();
  if (a.endpoint.empty() || a.baseline_endpoint.empty())
    usage_error("--endpoint URL and --baseline-endpoint URL go together (the deployment and its 16-bit baseline)");
  if (!kv_specs.empty() || !a.kv_policy.empty())
    usage_error("--kv / --kv-policy do not apply with --endpoint: the server runs its own KV plan");
  if (!a.text.empty()) usage_error("--text needs the built-in engine's logits; it does not apply with --endpoint");
  // What the built-in engine would use has no effect on a server's responses.
  const std::pair<bool, const char*> engine_only[] = {{!a.model.empty(), "--model"},
                                                       {!a.kv_storage.storage.empty(), "--kv-storage"},
                                                       {!a.kv_storage.compat.empty(), "--compat"},
                                                       {a.random_weights, "--random-weights"},
                                                       {a.ppl_windows > 0, "--ppl-windows"},
                                                       {a.no_noise_floor, "--no-noise-floor"}};
  for (const auto& [given, flag] : engine_only)
    if (given) usage_error("{} does not apply with --endpoint: the server runs its own model and KV cache", flag);
  if (a.max_new_tokens < 1) usage_error("--max-new-tokens must be >= 1 (got {})", a.max_new_tokens);
  const std::string data_dir = resolve_data_dir(a.data);
  const LoadedBenchmarks loaded = load_selected_benchmarks(a, data_dir);
  if (loaded.prompts.empty()) usage_error("--bench: the selected benchmarks hold no prompt");
  const JudgeSpec judge_spec = parse_judge_spec(a.judge);
  if (!judge_spec.is_model) {  // only a guard model runs here
    const std::pair<bool, const char*> judge_only[] = {
        {!a.device.empty(), "--device"}, {a.threads != 0, "--threads"}, {a.batch_size != 0, "--batch-size"}};
    for (const auto& [given, flag] : judge_only)
      if (given) usage_error("{} applies with --endpoint only to a model judge (--judge model:...)", flag);
  }

  const auto endpoint = [&](const std::string& flag, const std::string& url) {
    EndpointOptions o;
    o.url = url;
    o.flag = flag;
    o.model = a.endpoint_model;
    if (const char* key = std::getenv("OPENAI_API_KEY")) o.api_key = key;
    o.system = a.system;
    o.raw = a.raw;
    o.max_tokens = a.max_new_tokens;
    o.concurrency = a.endpoint_concurrency;
    o.retries = a.endpoint_retries;
    o.timeout_s = a.endpoint_timeout;
    return std::make_unique<Endpoint>(o);
  };
  const auto deployed = endpoint("--endpoint", a.endpoint);
  const auto baseline = endpoint("--baseline-endpoint", a.baseline_endpoint);
  std::string name = a.endpoint_scheme;
  if (name.empty()) name = deployed->kv().empty() || deployed->kv() == "fp16" ? "endpoint" : deployed->kv();
  if (name == "fp16") usage_error("--endpoint-scheme: 'fp16' names the baseline; choose another name");
  const std::vector<SchemeRun> schemes = {{"fp16", nullptr}, {name, nullptr}};

  std::unique_ptr<GuardJudge> guard;
  std::unique_ptr<PhraseJudge> phrases;
  if (judge_spec.is_model) {
    const engine::Device device = a.device.empty() ? engine::default_device() : engine::parse_device(a.device);
    guard = std::make_unique<GuardJudge>(judge_spec, device, a.threads, data_dir, a.batch_size);
  } else {
    phrases = std::make_unique<PhraseJudge>(load_phrase_judge(judge_spec, data_dir));
  }
  GenerationIo io;
  io.judge = [&](const std::vector<const Prompt*>& ps, const std::vector<std::string>& rs) {
    if (guard) return guard->judge(ps, rs);
    std::vector<Verdict> v;
    for (const auto& r : rs) v.push_back(phrases->judge(r));
    return v;
  };
  io.judge_name = a.judge;
  io.gen = generation_settings(a, engine::Device::kCpu, a.max_new_tokens, deployed->model());

  const std::string samples_path = (std::filesystem::path(a.out) / "samples.jsonl").string();
  std::filesystem::create_directories(a.out);
  const SamplesLog previous = read_samples(samples_path);
  SamplesWriter writer(samples_path, previous.valid_bytes);
  Progress progress(a.quiet ? nullptr : stderr, ::isatty(fileno(stderr)) != 0, "eval --endpoint",
                    loaded.prompts.size() * schemes.size(), "samples");
  RunStats stats;
  const size_t chunk = a.chunk ? a.chunk : 4 * size_t(std::max(1, a.endpoint_concurrency));
  const auto t_gen = std::chrono::steady_clock::now();
  const SampleMap samples =
      run_samples(endpoint_responder({"fp16", name}, {baseline.get(), deployed.get()}), loaded.prompts, schemes, io,
                  chunk, true, previous, writer, &progress, &stats);
  progress.finish();
  const auto t_end = std::chrono::steady_clock::now();

  RunResults r;
  r.model = {a.endpoint, "endpoint:" + deployed->model(), 0, ""};
  r.config = config_json(a, {}, data_dir, nullptr, "");
  r.config["endpoint"] = a.endpoint;
  r.config["baseline_endpoint"] = a.baseline_endpoint;
  r.config["endpoint_model"] = deployed->model();
  r.config["endpoint_scheme"] = name;
  for (const auto& [k, v] : extra_config.items()) r.config[k] = v;
  r.results = aggregate_results(loaded.prompts, schemes, samples);
  const auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  r.timing = {{"total_s", secs(t_end - t0)},
              {"generate_s", secs(t_end - t_gen)},
              {"samples_generated", stats.generated},
              {"samples_resumed", stats.resumed},
              {"duplicates_dropped", loaded.duplicates_dropped}};
  return r;
}

}  // namespace kvaudit::eval
