// What verdict-aware early stop buys `kvaudit eval` (issue 9 item 6): the same prompts and schemes
// generated (a) with early stop, as `eval` runs by default with a phrase judge (a response stops once
// the judge's verdict can no longer change), and (b) with --full-responses (every response runs to a
// stop id or --max-new-tokens). Both are eval::run_samples over one eval::EvalSession (model, chat
// template, judge and stop ids exactly as `eval` sets them); (b) only clears GenerationIo's
// new_stream/decided. After an untimed warm-up the modes alternate (which goes first alternates too);
// each run prints the 1-minute load average, wall and process CPU time, the ids generated and how
// many samples stopped early; at the end the medians, their ratios, and whether every metric of
// every (scheme, benchmark) is identical between the modes (exit 1 if not).
//
// Run (docs/PERFORMANCE.md "Verdict-aware early stop"):
//   build-stop/bench/bench_eval_early_stop --model ~/.cache/kvaudit/SmolLM2-135M-Instruct.Q4_1.gguf
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_clock.h"
#include "eval/pipeline.h"
#include "eval/results.h"
#include "eval/runner.h"
#include "eval/samples.h"
#include "report/results_json.h"

namespace {

using namespace kvaudit;

struct Args {
  eval::EvalArgs eval;
  int repeat = 3;
};

using bench::load_average_1min;
using bench::process_cpu_s;

struct RunOutcome {
  double wall_s = 0;
  double cpu_s = 0;  // CPU time of every thread of the process
  eval::RunStats stats;
  eval::SampleMap samples;
};

RunOutcome run_once(eval::EvalSession& session, const std::vector<eval::Prompt>& prompts,
                    const std::vector<eval::SchemeRun>& schemes, const eval::GenerationIo& io,
                    const std::filesystem::path& scratch) {
  RunOutcome r;
  std::filesystem::remove(scratch);
  eval::SamplesWriter writer(scratch.string(), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = process_cpu_s();
  r.samples = eval::run_samples(session.backend(), prompts, schemes, io, session.runner_options(), {}, writer,
                                nullptr, &r.stats);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_s = process_cpu_s() - c0;
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Every metric of every (scheme, benchmark), as results.json writes it.
std::string metrics_text(const std::vector<eval::Prompt>& prompts, const std::vector<eval::SchemeRun>& schemes,
                         const eval::SampleMap& samples) {
  std::string out;
  for (const auto& s : eval::aggregate_results(prompts, schemes, samples))
    for (const auto& b : s.benches) out += s.scheme + " " + b.bench + " " + report::metrics_json(b.metrics).dump() + "\n";
  return out;
}

int run(Args& a) {
  a.eval.quiet = true;
  a.eval.full_responses = false;
  const eval::LoadedBenchmarks loaded = eval::load_selected_benchmarks(a.eval, eval::resolve_data_dir(a.eval.data));
  const std::vector<eval::Prompt>& prompts = loaded.prompts;
  eval::EvalSession session(a.eval);
  if (!session.io().decided) throw std::runtime_error("--judge " + a.eval.judge + " has no early stop (a model judge)");
  std::vector<eval::SchemeRun> schemes = {{"fp16", nullptr}};
  for (const auto& spec : a.eval.kv) schemes.push_back(session.scheme(spec));

  std::map<bool, eval::GenerationIo> io = {{true, session.io()}, {false, session.io()}};  // early -> io
  io[false].new_stream = nullptr;
  io[false].decided = nullptr;

  const auto scratch = std::filesystem::temp_directory_path() /
                       ("kvaudit_bench_eval_early_stop_" + std::to_string(::getpid()) + ".jsonl");
  std::printf("model %s, %zu prompts x %zu variants, judge %s, max_new_tokens %d, batch_size %d, threads %d\n",
              session.model().path.c_str(), prompts.size(), schemes.size(), a.eval.judge.c_str(),
              a.eval.max_new_tokens, a.eval.batch_size, a.eval.threads);
  std::printf("%-6s %4s %6s %8s %8s %10s %9s %10s\n", "mode", "run", "load1", "wall_s", "cpu_s", "tokens",
              "stopped", "samples/min");
  std::fflush(stdout);
  {  // warm-up (untimed): page faults and allocator arenas would otherwise go to the first mode
    const std::vector<eval::Prompt> one(prompts.begin(), prompts.begin() + std::min<size_t>(prompts.size(), 2));
    run_once(session, one, schemes, io[true], scratch);
  }
  std::map<bool, std::vector<double>> wall, cpu;
  std::map<bool, RunOutcome> first;
  for (int rep = 0; rep < a.repeat; ++rep)
    for (bool second : {false, true}) {
      const bool early = (rep % 2 == 0) != second;
      const double load = load_average_1min();
      RunOutcome r = run_once(session, prompts, schemes, io[early], scratch);
      wall[early].push_back(r.wall_s);
      cpu[early].push_back(r.cpu_s);
      std::printf("%-6s %4d %6.2f %8.1f %8.1f %10zu %4zu/%-4zu %10.1f\n", early ? "early" : "full", rep + 1, load,
                  r.wall_s, r.cpu_s, r.stats.tokens, r.stats.stopped_early, r.samples.size(),
                  double(r.samples.size()) / (r.wall_s / 60.0));
      std::fflush(stdout);
      if (!first.count(early)) first[early] = std::move(r);
    }
  std::filesystem::remove(scratch);

  // The bookkeeping early stop adds per generated token (incremental decode + the judge's query),
  // timed alone: the full run's responses re-encoded and replayed token by token.
  size_t replayed = 0;
  const auto r0 = std::chrono::steady_clock::now();
  for (const auto& [k, s] : first[false].samples) {
    const auto push = io[true].new_stream();
    std::string stable;
    for (int id : session.tokenizer().encode(s.response, false)) {
      stable += push(id);
      if (io[true].decided(stable)) break;
      ++replayed;
    }
  }
  const double replay_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
  std::printf("early-stop bookkeeping: %.1f us per token (%zu tokens replayed in %.3f s)\n",
              1e6 * replay_s / double(std::max<size_t>(1, replayed)), replayed, replay_s);

  size_t verdicts_differ = 0;
  for (const auto& [k, s] : first[true].samples) verdicts_differ += s.refused != first[false].samples.at(k).refused;
  const bool same_metrics =
      metrics_text(prompts, schemes, first[true].samples) == metrics_text(prompts, schemes, first[false].samples);
  const double we = median(wall[true]), wf = median(wall[false]), ce = median(cpu[true]), cf = median(cpu[false]);
  std::printf("tokens: full %zu, early %zu (%.2fx fewer)\n", first[false].stats.tokens, first[true].stats.tokens,
              double(first[false].stats.tokens) / double(std::max<size_t>(1, first[true].stats.tokens)));
  std::printf("median wall s: full %.1f, early %.1f, ratio %.2fx\n", wf, we, wf / we);
  std::printf("median CPU s: full %.1f, early %.1f, ratio %.2fx\n", cf, ce, cf / ce);
  std::printf("verdicts differing: %zu of %zu; metrics identical: %s\n", verdicts_differ, first[true].samples.size(),
              same_metrics ? "yes" : "NO");
  return verdicts_differ == 0 && same_metrics ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  a.eval.bench = {"advbench,xstest"};
  a.eval.kv = {"int4:token:asym"};
  a.eval.limit = 24;
  a.eval.max_new_tokens = 64;
  CLI::App app("Verdict-aware early stop vs full-length responses: wall time, tokens, identical metrics");
  app.add_option("--model", a.eval.model, "HF model directory or .gguf file")->required();
  app.add_option("--bench", a.eval.bench, "benchmarks (default advbench,xstest)");
  app.add_option("--kv", a.eval.kv, "schemes besides fp16 (default int4:token:asym)");
  app.add_option("--judge", a.eval.judge, "a phrase judge (default substring:paper)");
  app.add_option("--data", a.eval.data, "datasets directory (default $KVAUDIT_DATA, else ../shared/datasets)");
  app.add_option("--limit", a.eval.limit, "prompts per benchmark (seeded subset, default 24)");
  app.add_option("--max-new-tokens", a.eval.max_new_tokens, "default 64");
  app.add_option("--batch-size", a.eval.batch_size, "sequences per batch (default 16)");
  app.add_option("--threads", a.eval.threads, "CPU threads (default: all)");
  app.add_option("--repeat", a.repeat, "runs per mode, alternating; the median is reported (default 3)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_eval_early_stop: %s\n", e.what());
    return 1;
  }
}
