// What the screen saves against the generation it replaces (issue 9, docs/AUDIT.md "Screen"): for
// the 16-bit baseline plus K schemes on N held-out prompts, (a) the screen: diagnose::prefill_scores,
// one prefill per (prompt, scheme) and the refusal score at the first generated position, prompt-major
// batches of --batch-size as the audit runs it; against (b) generation: the same prompts x schemes
// generated to --max-new-tokens with verdict-aware early stop and judged, as `eval` and the audit run
// it (eval::run_samples over one eval::EvalSession). The prompts are the audit's own: the held-out set
// (diagnose::heldout_prompts, `--heldout`, seeded, disjoint from the calibration prompts), and the
// refusal openings come from the 16-bit baseline's refusals on the calibration prompts (`--calib`),
// generated once before the timed runs (as the audit's layer-scan stage does) and timed separately.
// After an untimed warm-up the modes alternate (which goes first alternates too); each run prints the
// 1-minute load average, wall and process CPU time, and what it computed; at the end the medians and
// their ratio, and as a sanity check of the screen the AUROC of its score drop (16-bit score - scheme
// score) against the generation's flips, per scheme and pooled, over the prompts the baseline refused
// (NaN where a class is empty). Exit 1 if the screen's scores differ between its runs.
//
// Run (docs/PERFORMANCE.md "Audit: the screen vs the generation it replaces"):
//   OMP_WAIT_POLICY=passive build/bench/bench_audit_screen
//       --model ~/.cache/kvaudit/SmolLM2-135M-Instruct.Q4_1.gguf --threads 2
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_clock.h"
#include "diagnose/prompt_sets.h"
#include "diagnose/screen.h"
#include "eval/benchmarks.h"
#include "eval/pipeline.h"
#include "eval/runner.h"
#include "eval/samples.h"

namespace {

using namespace kvaudit;

struct Args {
  eval::EvalArgs eval;
  std::string calib = "custom", heldout = "advbench:40";
  int repeat = 2;
};

using bench::load_average_1min;
using bench::process_cpu_s;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

struct Timed {
  double wall_s = 0, cpu_s = 0;
};

template <class F>
Timed timed(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = process_cpu_s();
  f();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), process_cpu_s() - c0};
}

int run(Args& a) {
  a.eval.quiet = true;
  a.eval.full_responses = false;  // as eval and the audit run: verdict-aware early stop
  eval::EvalSession session(a.eval);
  const auto calib =
      diagnose::calibration_prompts(diagnose::parse_prompt_set(a.calib, "--calib"), session.data_dir());
  std::vector<eval::Prompt> held;
  for (auto& p : diagnose::heldout_prompts(diagnose::parse_prompt_set(a.heldout, "--heldout"), session.data_dir(),
                                           a.eval.seed, calib))
    if (!eval::is_over_refusal_probe(p)) held.push_back(std::move(p));
  const auto scratch = std::filesystem::temp_directory_path() /
                       ("kvaudit_bench_audit_screen_" + std::to_string(::getpid()) + ".jsonl");
  const eval::SchemeRun base{"fp16", nullptr};

  auto generate = [&](const std::vector<eval::Prompt>& prompts, const std::vector<eval::SchemeRun>& schemes,
                      eval::RunStats* stats) {
    std::filesystem::remove(scratch);
    eval::SamplesWriter writer(scratch.string(), 0);
    return eval::run_samples(session.backend(), prompts, schemes, session.io(), session.runner_options(), {}, writer,
                             nullptr, stats);
  };

  // The refusal openings: the baseline's refusals on the calibration prompts (once, untimed in the modes).
  eval::SampleMap cb;
  eval::RunStats cst;
  const Timed ct = timed([&] { cb = generate(calib, {base}, &cst); });
  std::vector<std::string> refusals;
  for (const auto& p : calib)
    if (cb.at({p.id, base.name}).refused) refusals.push_back(cb.at({p.id, base.name}).response);
  const std::vector<int> openings = diagnose::refusal_openings(session.tokenizer(), refusals);
  if (openings.empty()) throw std::runtime_error("the baseline refuses none of the calibration prompts: no openings");

  std::vector<eval::SchemeRun> runs = {base};
  for (const auto& spec : a.eval.kv) runs.push_back(session.scheme(spec));
  std::vector<std::shared_ptr<const kv::KvPolicy>> policies;
  for (const auto& r : runs) policies.push_back(r.policy);
  std::vector<std::vector<int>> ids;
  size_t prompt_tokens = 0;
  for (const auto& p : held) {
    ids.push_back(session.io().encode(p));
    prompt_tokens += ids.back().size();
  }
  std::printf("model %s; openings from %zu baseline refusals of %zu calibration prompts (%zu ids; %zu tokens, "
              "%.1f s wall, %.1f s CPU, once)\n",
              session.model().path.c_str(), refusals.size(), calib.size(), openings.size(), cst.tokens, ct.wall_s,
              ct.cpu_s);
  std::printf("%zu held-out prompts (%s, %zu prompt tokens) x %zu variants (fp16 +", held.size(), a.heldout.c_str(),
              prompt_tokens, runs.size());
  for (size_t i = 1; i < runs.size(); ++i) std::printf(" %s", runs[i].name.c_str());
  std::printf("), judge %s, max_new_tokens %d, batch_size %d, threads %d\n", a.eval.judge.c_str(),
              a.eval.max_new_tokens, a.eval.batch_size, a.eval.threads);
  std::printf("%-8s %4s %6s %8s %8s  %s\n", "mode", "run", "load1", "wall_s", "cpu_s", "work");
  std::fflush(stdout);

  {  // warm-up (untimed): one prompt both ways
    const std::vector<eval::Prompt> one(held.begin(), held.begin() + 1);
    diagnose::prefill_scores(session.backend(), {ids[0]}, policies, openings, a.eval.batch_size);
    generate(one, runs, nullptr);
  }
  std::map<bool, std::vector<double>> wall, cpu;  // screen -> runs
  std::vector<std::vector<double>> scores;        // [variant][prompt], first screen run
  eval::SampleMap gen;                            // first generation run
  bool scores_stable = true;
  for (int rep = 0; rep < a.repeat; ++rep)
    for (bool second : {false, true}) {
      const bool screen = (rep % 2 == 0) != second;
      const double load = load_average_1min();
      char work[160];
      Timed t;
      if (screen) {
        std::vector<std::vector<double>> sc;
        t = timed([&] { sc = diagnose::prefill_scores(session.backend(), ids, policies, openings, a.eval.batch_size); });
        std::snprintf(work, sizeof work, "%zu prefills, %zu prompt tokens", held.size() * runs.size(),
                      prompt_tokens * runs.size());
        if (scores.empty()) scores = sc;
        else scores_stable = scores_stable && sc == scores;
      } else {
        eval::RunStats st;
        eval::SampleMap m;
        t = timed([&] { m = generate(held, runs, &st); });
        std::snprintf(work, sizeof work, "%zu samples, %zu new tokens, %zu stopped early", st.generated, st.tokens,
                      st.stopped_early);
        if (gen.empty()) gen = std::move(m);
      }
      wall[screen].push_back(t.wall_s);
      cpu[screen].push_back(t.cpu_s);
      std::printf("%-8s %4d %6.2f %8.1f %8.1f  %s\n", screen ? "screen" : "generate", rep + 1, load, t.wall_s,
                  t.cpu_s, work);
      std::fflush(stdout);
    }
  std::filesystem::remove(scratch);

  // Sanity: the screen's score drop against the generation's flips, over the baseline's refusals.
  std::vector<size_t> refused;
  for (size_t i = 0; i < held.size(); ++i)
    if (gen.at({held[i].id, base.name}).refused) refused.push_back(i);
  std::printf("baseline refuses %zu of %zu held-out prompts\n", refused.size(), held.size());
  std::vector<double> all_drop;
  std::vector<char> all_flip;
  for (size_t k = 1; k < runs.size(); ++k) {
    std::vector<double> drop, shift;
    std::unique_ptr<bool[]> flip(new bool[refused.size()]());
    size_t flips = 0;
    for (size_t j = 0; j < refused.size(); ++j) {
      const size_t i = refused[j];
      drop.push_back(scores[0][i] - scores[k][i]);
      flip[j] = !gen.at({held[i].id, runs[k].name}).refused;
      flips += flip[j];
      all_drop.push_back(drop.back());
      all_flip.push_back(flip[j]);
    }
    for (size_t i = 0; i < held.size(); ++i) shift.push_back(scores[k][i] - scores[0][i]);
    std::printf("  %-18s flips %zu/%zu, AUROC %.3f, median score shift (all %zu prompts) %+.3f\n", runs[k].name.c_str(),
                flips, refused.size(), diagnose::auroc(drop, {flip.get(), refused.size()}), held.size(),
                median(shift));
  }
  std::unique_ptr<bool[]> pooled(new bool[all_flip.size()]);
  size_t pooled_flips = 0;
  for (size_t j = 0; j < all_flip.size(); ++j) pooled_flips += (pooled[j] = all_flip[j] != 0);
  std::printf("pooled over schemes: %zu flips of %zu (refused prompt, scheme) pairs, AUROC %.3f\n", pooled_flips,
              all_flip.size(), diagnose::auroc(all_drop, {pooled.get(), all_flip.size()}));
  const double ws = median(wall[true]), wg = median(wall[false]), cs = median(cpu[true]), cg = median(cpu[false]);
  std::printf("median wall s: screen %.1f, generate %.1f, ratio %.2fx\n", ws, wg, wg / ws);
  std::printf("median CPU s: screen %.1f, generate %.1f, ratio %.2fx\n", cs, cg, cg / cs);
  std::printf("screen scores identical between runs: %s\n", scores_stable ? "yes" : "NO");
  return scores_stable ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  a.eval.kv = {"int2:token:asym", "int3:tensor:sym", "int4:token:asym", "int8:token:asym", "kivi2", "fp8e5m2"};
  a.eval.max_new_tokens = 32;
  a.eval.threads = 2;
  CLI::App app("The audit's screen (one prefill per prompt and scheme) vs generating the same prompts x schemes");
  app.add_option("--model", a.eval.model, "HF model directory or .gguf file")->required();
  app.add_option("--kv", a.eval.kv, "schemes besides fp16 (default int2:token:asym int3:tensor:sym int4:token:asym "
                                    "int8:token:asym kivi2 fp8e5m2)");
  app.add_option("--calib", a.calib, "calibration prompts for the refusal openings (default custom = all 63)");
  app.add_option("--heldout", a.heldout, "held-out prompts BENCH[:N] (default advbench:40)");
  app.add_option("--seed", a.eval.seed, "held-out subset seed (default 0)");
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
    std::fprintf(stderr, "bench_audit_screen: %s\n", e.what());
    return 1;
  }
}
