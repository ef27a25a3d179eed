// kvaudit sweep (SPEC.md §4 "Phase transition", §7): one scheme family over --bits (16 = the
// baseline) in one eval run; the onset per benchmark = the highest bit-width whose flip-rate Wilson
// lower bound exceeds --threshold. Writes results.json, samples.jsonl and sweep.json to --out.
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/eval_pipeline.h"
#include "diagnose/rules.h"
#include "eval/sweep.h"
#include "io/atomic_file.h"
#include "io/out_dir_lock.h"
#include "report/results_json.h"

namespace kvaudit::cli {
namespace {

struct SweepArgs {
  EvalArgs eval;
  std::string scheme = "int:token:asym", bits = "16,8,6,5,4,3,2";
  double threshold = diagnose::rules::kOnsetThreshold;
};

void run_sweep(const SweepArgs& a) {
  const io::OutDirLock lock(a.eval.out);  // one writer per --out, held until sweep.json is written
  const std::vector<int> bits = eval::parse_bits(a.bits);
  std::vector<std::string> specs;
  for (int b : bits)
    if (b != 16) specs.push_back(eval::sweep_spec(a.scheme, b));
  const eval::RunResults r = run_eval_and_write(
      a.eval, specs, {{"scheme", a.scheme}, {"bits", bits}, {"threshold", a.threshold}});

  // Onset per benchmark; results[0] is the baseline (16 bits), then specs in `bits` order.
  nlohmann::ordered_json sweep;
  sweep["scheme"] = a.scheme;
  sweep["bits"] = bits;
  sweep["threshold"] = a.threshold;
  sweep["onset"] = nlohmann::ordered_json::object();
  for (size_t bi = 0; bi < r.results[0].benches.size(); ++bi) {
    std::vector<eval::SweepPoint> points;
    points.push_back({16, r.results[0].benches[bi].metrics});
    size_t k = 1;
    for (int b : bits)
      if (b != 16) points.push_back({b, r.results[k++].benches[bi].metrics});
    const auto onset = eval::onset_bits(points, a.threshold);
    sweep["onset"][r.results[0].benches[bi].bench] = onset ? nlohmann::ordered_json(*onset) : nullptr;
  }
  io::write_file_atomic((std::filesystem::path(a.eval.out) / "sweep.json").string(), sweep.dump(2) + "\n");
  if (a.eval.json) {  // results.json with sweep.json under "sweep": the onset is the command's answer
    auto j = nlohmann::ordered_json::parse(report::results_json(r));
    j["sweep"] = sweep;
    std::fputs((j.dump(2) + "\n").c_str(), stdout);
    return;
  }
  print_eval_results(a.eval, r);
  for (const auto& [bench, onset] : sweep["onset"].items())
    std::printf("onset %s: %s (flip-rate Wilson lower bound > %g)\n", bench.c_str(),
                onset.is_null() ? "none" : (std::to_string(onset.get<int>()) + " bits").c_str(), a.threshold);
}

}  // namespace

void add_sweep(CLI::App& app) {
  auto* cmd = app.add_subcommand("sweep", "Phase transition: one scheme family over bit-widths, onset bit-width");
  auto a = std::make_shared<SweepArgs>();
  add_eval_options(cmd, a->eval);
  cmd->get_option("--json")->description("print results.json with sweep.json (the onsets) under \"sweep\" instead of the table");
  add_noise_floor_option(cmd, a->eval);
  cmd->add_option("--scheme", a->scheme, "scheme family without bits: int[:gran][:sym|asym]..., kivi[:gN], nuq "
                                         "(default int:token:asym)");
  cmd->add_option("--bits", a->bits, "bit-widths in 1..8 and 16 (the fp16 baseline), each once; default 16,8,6,5,4,3,2");
  cmd->add_option("--threshold", a->threshold, "onset: flip-rate Wilson lower bound above this, in [0, 1) (default 0.05)")
      ->check(fraction_check(true, false));
  cmd->callback([a] { run_sweep(*a); });
}

}  // namespace kvaudit::cli
