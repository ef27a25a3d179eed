// What shared batches buy `kvaudit eval` (issue "Safety evaluation", must-show 6): prompts/minute of
// a 16-bit + N-scheme evaluation run (a) with shared batches, as `eval` runs it (each sequence
// carries its own KV policy, so one batch holds every scheme of several prompts and a decode step
// reads the weights once for all of them), and (b) one scheme at a time (N+1 passes, each its own
// batches, same batch size). Both modes are eval::run_samples, differing only in
// RunnerOptions::share_batches; same prompts, judge, threads. After an untimed warm-up the modes
// alternate (which goes first alternates too); each run notes the 1-minute load average, wall and
// process CPU time; the median per mode and the ratios are printed at the end. prompts/min = prompts
// fully evaluated (all N+1 variants generated and judged) per wall minute; per_cpu_min the same per
// CPU-minute of the process (the steadier figure on a shared machine).
//
// Run (docs/PERFORMANCE.md "Eval: shared batches"):
//   build-eval/bench/bench_eval_sharing --model ~/.cache/kvaudit/SmolLM2-135M-Instruct.Q4_1.gguf
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_clock.h"
#include "eval/benchmarks.h"
#include "eval/chat_prompt.h"
#include "eval/judges.h"
#include "eval/runner.h"
#include "eval/samples.h"
#include "kv/policy.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace {

using namespace kvaudit;

struct Args {
  std::string model, bench = "advbench", data;
  std::vector<std::string> kv = {"int8:token:asym", "int4:token:asym", "int2:token:asym",
                                 "kivi4",           "fp8e4m3",         "q4_0"};
  size_t prompts = 16;
  uint64_t seed = 0;
  int max_new_tokens = 64, batch_size = 56, threads = 0, repeat = 3;
};

using bench::load_average_1min;
using bench::process_cpu_s;

struct RunOutcome {
  double wall_s = 0;
  double cpu_s = 0;           // CPU time of every thread of the process (spin-waits included)
  size_t new_tokens = 0;      // generated ids over every sample (stop ids excluded)
  eval::SampleMap samples;    // for the cross-mode identity check
};

RunOutcome run_once(engine::Backend& backend, const std::vector<eval::Prompt>& prompts,
                    const std::vector<eval::SchemeRun>& schemes, const eval::GenerationIo& base_io,
                    const eval::RunnerOptions& opt, const std::filesystem::path& scratch) {
  RunOutcome r;
  eval::GenerationIo io = base_io;
  io.decode = [&](const std::vector<int>& ids) {
    r.new_tokens += ids.size();
    return base_io.decode(ids);
  };
  std::filesystem::remove(scratch);
  eval::SamplesWriter writer(scratch.string(), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = process_cpu_s();
  r.samples = eval::run_samples(backend, prompts, schemes, io, opt, {}, writer, nullptr);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_s = process_cpu_s() - c0;
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(const Args& a) {
  eval::BenchSelection sel;
  sel.names = {a.bench};
  sel.data_dir = eval::resolve_data_dir(a.data);
  sel.limit = a.prompts;
  sel.seed = a.seed;
  const std::vector<eval::Prompt> prompts = eval::load_benchmarks(sel).prompts;

  model::LoadOptions lo;
  lo.compute_sha256 = false;
  const model::Model m = model::load_model(a.model, lo);
  const text::Tokenizer tok = text::Tokenizer::load_for_model(a.model);
  std::vector<eval::SchemeRun> schemes = {{"fp16", nullptr}};
  for (const auto& spec : a.kv)
    schemes.push_back({spec, std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse(spec, m.config.n_layers))});

  const eval::PhraseJudge judge =
      eval::load_phrase_judge(eval::parse_judge_spec("substring:paper"), sel.data_dir);
  eval::GenerationIo io;
  io.encode = [&](const eval::Prompt& p) { return eval::encode_chat_prompt(tok, p.text, "", false, a.model); };
  io.decode = [&](const std::vector<int>& ids) { return tok.decode(ids, true); };
  io.judge = [&](const std::vector<const eval::Prompt*>&, const std::vector<std::string>& rs) {
    std::vector<eval::Verdict> v;
    for (const auto& r : rs) v.push_back(judge.judge(r));
    return v;
  };
  io.judge_name = "substring:paper";

  eval::RunnerOptions opt;  // as cli/eval_pipeline.cc sets it
  opt.gen.max_new_tokens = a.max_new_tokens;
  opt.gen.batch_size = a.batch_size;
  opt.gen.stop_ids = m.config.eos_ids;
  for (int id : tok.eos_ids())
    if (std::find(opt.gen.stop_ids.begin(), opt.gen.stop_ids.end(), id) == opt.gen.stop_ids.end())
      opt.gen.stop_ids.push_back(id);

  auto backend = engine::make_backend(engine::Device::kCpu, m, {a.threads});
  const auto scratch = std::filesystem::temp_directory_path() /
                       ("kvaudit_bench_eval_sharing_" + std::to_string(::getpid()) + ".jsonl");
  std::printf("model %s, %zu %s prompts x %zu variants (fp16", m.path.c_str(), prompts.size(), a.bench.c_str(),
              schemes.size());
  for (const auto& spec : a.kv) std::printf(", %s", spec.c_str());
  std::printf("), max_new_tokens %d, batch_size %d, threads %d\n", a.max_new_tokens, a.batch_size, a.threads);
  std::printf("%-7s %4s %6s %8s %8s %12s %12s %10s\n", "mode", "run", "load1", "wall_s", "cpu_s", "prompts/min",
              "per_cpu_min", "new_tok/s");
  std::fflush(stdout);

  // Warm-up (untimed): first-touch of the model's pages and the allocator's arenas would otherwise
  // be charged to whichever mode runs first.
  {
    const std::vector<eval::Prompt> one(prompts.begin(), prompts.begin() + std::min<size_t>(prompts.size(), 2));
    run_once(*backend, one, schemes, io, opt, scratch);
  }
  std::map<bool, std::vector<double>> per_min, per_cpu_min;  // share_batches -> prompts/minute per run
  std::map<bool, eval::SampleMap> first;                     // share_batches -> samples of the first run
  for (int rep = 0; rep < a.repeat; ++rep)
    for (bool second : {false, true}) {
      const bool shared = (rep % 2 == 0) != second;  // shared first in odd runs, second in even ones
      opt.share_batches = shared;
      const double load = load_average_1min();
      RunOutcome r = run_once(*backend, prompts, schemes, io, opt, scratch);
      const double ppm = double(prompts.size()) / (r.wall_s / 60.0);
      const double ppcm = double(prompts.size()) / (r.cpu_s / 60.0);
      per_min[shared].push_back(ppm);
      per_cpu_min[shared].push_back(ppcm);
      std::printf("%-7s %4d %6.2f %8.1f %8.1f %12.2f %12.2f %10.1f\n", shared ? "shared" : "single", rep + 1, load,
                  r.wall_s, r.cpu_s, ppm, ppcm, double(r.new_tokens) / r.wall_s);
      std::fflush(stdout);
      if (!first.count(shared)) first[shared] = std::move(r.samples);
    }
  std::filesystem::remove(scratch);

  // Batch invariance (SPEC.md §4): the schedule must not change a single response.
  size_t differ = 0;
  for (const auto& [k, s] : first[true])
    differ += eval::sample_json_line(s) != eval::sample_json_line(first[false].at(k));
  const double ms = median(per_min[true]), mo = median(per_min[false]);
  const double cs = median(per_cpu_min[true]), co = median(per_cpu_min[false]);
  std::printf("median prompts/min: shared %.2f, one scheme at a time %.2f, ratio %.2fx\n", ms, mo, ms / mo);
  std::printf("median prompts per CPU-minute: shared %.2f, one scheme at a time %.2f, ratio %.2fx\n", cs, co, cs / co);
  std::printf("samples differing between modes: %zu of %zu\n", differ, first[true].size());
  return differ == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app("Prompts/minute of a 16-bit + N-scheme eval: shared batches vs one scheme at a time");
  app.add_option("--model", a.model, "HF model directory or .gguf file")->required();
  app.add_option("--bench", a.bench, "benchmark name (default advbench)");
  app.add_option("--data", a.data, "datasets directory (default $KVAUDIT_DATA, else ../shared/datasets)");
  app.add_option("--prompts", a.prompts, "prompts (seeded subset of the benchmark, default 16)");
  app.add_option("--seed", a.seed, "seed of the subset (default 0)");
  app.add_option("--kv", a.kv, "schemes besides fp16 (default int8/int4/int2:token:asym, kivi4, fp8e4m3, q4_0)");
  app.add_option("--max-new-tokens", a.max_new_tokens, "default 64");
  app.add_option("--batch-size", a.batch_size, "sequences per batch in both modes (default 56)");
  app.add_option("--threads", a.threads, "CPU threads (default: all)");
  app.add_option("--repeat", a.repeat, "runs per mode, alternating; the median is reported (default 3)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_eval_sharing: %s\n", e.what());
    return 1;
  }
}
