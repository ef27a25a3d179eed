// What shared batches buy the audit's per-layer scan (issue 9, docs/AUDIT.md "Critical layers"):
// the calibration prompts the 16-bit baseline refuses, generated under each of the model's n_layers
// scan schemes `layer_scan_spec(l)` (layer l alone under int3:tensor:sym, every other layer 16-bit),
// (a) shared, as `kvaudit audit` runs it: one eval::run_samples over all n_layers schemes, requests
// prompt-major, so one batch holds every layer variant of a few prompts and a decode step reads the
// weights once for all of them; (b) one layer at a time: n_layers run_samples calls of one scheme
// each. Both over one eval::EvalSession (model, chat template, judge, early stop and stop ids exactly
// as the audit sets them). The prompts: the audit's own calibration set (diagnose::calibration_prompts,
// `--calib`, default all 63 paper custom prompts), the fp16 baseline generated once, the refused ones
// kept. After an untimed warm-up the modes alternate (which goes first alternates too); each run
// prints the 1-minute load average, wall and process CPU time, the ids generated and how many samples
// stopped early; at the end the medians, their ratios, the per-layer flip counts and critical layers
// of each mode, and whether every verdict is identical between the modes (exit 1 if not).
//
// Run (docs/PERFORMANCE.md "Audit: layer scan, shared vs one layer at a time"):
//   OMP_WAIT_POLICY=passive build/bench/bench_audit_layer_scan
//       --model ~/.cache/kvaudit/SmolLM2-135M-Instruct.Q4_1.gguf --threads 2
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
#include "diagnose/critical_layers.h"
#include "diagnose/prompt_sets.h"
#include "eval/metrics.h"
#include "eval/pipeline.h"
#include "eval/runner.h"
#include "eval/samples.h"

namespace {

using namespace kvaudit;

struct Args {
  eval::EvalArgs eval;
  std::string calib = "custom";
  int repeat = 2;
};

using bench::load_average_1min;
using bench::process_cpu_s;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

struct RunOutcome {
  double wall_s = 0;
  double cpu_s = 0;  // CPU time of every thread of the process
  eval::RunStats stats;
  eval::SampleMap samples;
};

// One run_samples call per entry of `groups` (each a list of schemes), into a fresh scratch file.
RunOutcome run_groups(eval::EvalSession& session, const std::vector<eval::Prompt>& prompts,
                      const std::vector<std::vector<eval::SchemeRun>>& groups, const std::filesystem::path& scratch) {
  RunOutcome r;
  std::filesystem::remove(scratch);
  eval::SamplesWriter writer(scratch.string(), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = process_cpu_s();
  for (const auto& g : groups) {
    eval::RunStats st;
    eval::SampleMap m =
        eval::run_samples(session.backend(), prompts, g, session.io(), session.runner_options(), {}, writer, nullptr, &st);
    r.samples.merge(m);
    r.stats.generated += st.generated;
    r.stats.tokens += st.tokens;
    r.stats.stopped_early += st.stopped_early;
  }
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_s = process_cpu_s() - c0;
  return r;
}

// Per layer: flips of the refused prompts (baseline refused all of them) and the critical layers.
std::vector<diagnose::LayerFlip> scan_of(const eval::SampleMap& m, const std::vector<eval::Prompt>& refused,
                                         const std::vector<eval::SchemeRun>& runs) {
  std::vector<diagnose::LayerFlip> scan;
  const size_t n = refused.size();
  std::unique_ptr<bool[]> base(new bool[n]), probe(new bool[n]()), v(new bool[n]);
  std::fill(base.get(), base.get() + n, true);
  for (size_t l = 0; l < runs.size(); ++l) {
    for (size_t i = 0; i < n; ++i) v[i] = m.at({refused[i].id, runs[l].name}).refused;
    scan.push_back({int(l), eval::refusal_metrics({base.get(), n}, {v.get(), n}, {probe.get(), n})});
  }
  return scan;
}

std::string layers_text(const std::vector<diagnose::LayerFlip>& v) {
  std::string s;
  for (const auto& f : v) s += (s.empty() ? "" : ",") + std::to_string(f.layer);
  return s.empty() ? "none" : s;
}

int run(Args& a) {
  a.eval.quiet = true;
  a.eval.full_responses = false;  // the audit's default: verdict-aware early stop
  eval::EvalSession session(a.eval);
  const auto calib =
      diagnose::calibration_prompts(diagnose::parse_prompt_set(a.calib, "--calib"), session.data_dir());
  const auto scratch = std::filesystem::temp_directory_path() /
                       ("kvaudit_bench_audit_layer_scan_" + std::to_string(::getpid()) + ".jsonl");
  const eval::SchemeRun base{"fp16", nullptr};

  // The calibration baseline, once (the audit generates it once too; not part of either mode).
  const RunOutcome b = run_groups(session, calib, {{base}}, scratch);
  std::vector<eval::Prompt> refused;
  for (const auto& p : calib)
    if (b.samples.at({p.id, base.name}).refused) refused.push_back(p);
  const int n_layers = session.model().config.n_layers;
  std::printf("model %s, %d layers, calib %s: %zu prompts, baseline refuses %zu (baseline: %zu tokens, %.1f s wall, "
              "%.1f s CPU)\n",
              session.model().path.c_str(), n_layers, a.calib.c_str(), calib.size(), refused.size(), b.stats.tokens,
              b.wall_s, b.cpu_s);
  if (refused.empty()) throw std::runtime_error("the baseline refuses none of the calibration prompts: nothing to scan");

  std::vector<eval::SchemeRun> runs;
  for (int l = 0; l < n_layers; ++l) runs.push_back(session.scheme(diagnose::layer_scan_spec(l)));
  std::map<bool, std::vector<std::vector<eval::SchemeRun>>> groups;  // shared -> the run_samples calls
  groups[true] = {runs};
  for (const auto& r : runs) groups[false].push_back({r});

  std::printf("scan: %zu refused prompts x %d layer schemes = %zu samples, judge %s, max_new_tokens %d, "
              "batch_size %d, threads %d\n",
              refused.size(), n_layers, refused.size() * size_t(n_layers), a.eval.judge.c_str(),
              a.eval.max_new_tokens, a.eval.batch_size, a.eval.threads);
  std::printf("%-7s %4s %6s %8s %8s %8s %9s %6s\n", "mode", "run", "load1", "wall_s", "cpu_s", "tokens", "stopped",
              "calls");
  std::fflush(stdout);
  {  // warm-up (untimed): page faults and allocator arenas would otherwise go to the first mode
    const std::vector<eval::Prompt> one(refused.begin(), refused.begin() + 1);
    run_groups(session, one, {{runs[0], runs[1]}}, scratch);
  }
  std::map<bool, std::vector<double>> wall, cpu;
  std::map<bool, RunOutcome> first;
  for (int rep = 0; rep < a.repeat; ++rep)
    for (bool second : {false, true}) {
      const bool shared = (rep % 2 == 0) != second;
      const double load = load_average_1min();
      RunOutcome r = run_groups(session, refused, groups[shared], scratch);
      wall[shared].push_back(r.wall_s);
      cpu[shared].push_back(r.cpu_s);
      std::printf("%-7s %4d %6.2f %8.1f %8.1f %8zu %4zu/%-4zu %6zu\n", shared ? "shared" : "single", rep + 1, load,
                  r.wall_s, r.cpu_s, r.stats.tokens, r.stats.stopped_early, r.samples.size(), groups[shared].size());
      std::fflush(stdout);
      if (!first.count(shared)) {
        first[shared] = std::move(r);
        if (first.size() == 2) {  // the check as soon as both modes have run once (a long run may be cut)
          size_t d = 0;
          for (const auto& [k, s] : first[true].samples) d += s.refused != first[false].samples.at(k).refused;
          std::printf("first pair: verdicts differing %zu of %zu\n", d, first[true].samples.size());
        }
      }
    }
  std::filesystem::remove(scratch);

  size_t verdicts_differ = 0, responses_differ = 0;
  for (const auto& [k, s] : first[true].samples) {
    const auto& o = first[false].samples.at(k);
    verdicts_differ += s.refused != o.refused;
    responses_differ += s.response != o.response;
  }
  const auto scan_shared = scan_of(first[true].samples, refused, runs);
  const auto scan_single = scan_of(first[false].samples, refused, runs);
  std::string flips;
  for (const auto& f : scan_shared) flips += (flips.empty() ? "" : " ") + std::to_string(f.metrics.flips);
  std::printf("flips per layer (of %zu): %s\n", refused.size(), flips.c_str());
  std::printf("critical layers: shared %s, single %s\n", layers_text(diagnose::critical_layers(scan_shared)).c_str(),
              layers_text(diagnose::critical_layers(scan_single)).c_str());
  const double ws = median(wall[true]), w1 = median(wall[false]), cs = median(cpu[true]), c1 = median(cpu[false]);
  std::printf("tokens: shared %zu, single %zu\n", first[true].stats.tokens, first[false].stats.tokens);
  std::printf("median wall s: shared %.1f, single %.1f, ratio %.2fx\n", ws, w1, w1 / ws);
  std::printf("median CPU s: shared %.1f, single %.1f, ratio %.2fx\n", cs, c1, c1 / cs);
  std::printf("verdicts differing: %zu of %zu; responses differing: %zu\n", verdicts_differ,
              first[true].samples.size(), responses_differ);
  return verdicts_differ == 0 && first[true].samples.size() == first[false].samples.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  a.eval.max_new_tokens = 32;
  a.eval.threads = 2;
  CLI::App app("The audit's layer scan, shared batches vs one layer at a time: wall, CPU, identical verdicts");
  app.add_option("--model", a.eval.model, "HF model directory or .gguf file")->required();
  app.add_option("--calib", a.calib, "calibration prompts BENCH[:N] (default custom = all 63)");
  app.add_option("--judge", a.eval.judge, "judge (default substring:paper, the audit's)");
  app.add_option("--data", a.eval.data, "datasets directory (default $KVAUDIT_DATA, else ../shared/datasets)");
  app.add_option("--max-new-tokens", a.eval.max_new_tokens, "default 32");
  app.add_option("--batch-size", a.eval.batch_size, "sequences per batch (default 16, the audit's)");
  app.add_option("--threads", a.eval.threads, "CPU threads (default 2)");
  app.add_option("--repeat", a.repeat, "runs per mode, alternating; the median is reported (default 2)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_audit_layer_scan: %s\n", e.what());
    return 1;
  }
}
