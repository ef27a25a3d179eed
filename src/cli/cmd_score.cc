// kvaudit score (SPEC.md §7): scores responses made elsewhere (another engine, lm-eval output)
// with the in-house IFEval scorer; results.json holds the four accuracies, samples.jsonl the
// per-prompt verdicts.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/version.h"
#include "eval/benchmarks.h"
#include "eval/ifeval/responses.h"
#include "io/atomic_file.h"
#include "io/out_dir_lock.h"

namespace kvaudit::cli {
namespace {

struct ScoreArgs {
  std::string bench = "ifeval", responses, out, data;
  bool quiet = false, json = false;
};

// score rewrites results.json and samples.jsonl whole: an --out that holds another command's (an
// eval's generated responses) is refused rather than overwritten. A previous score is replaced.
void refuse_other_runs_out(const std::string& dir) {
  const std::filesystem::path out(dir);
  const auto results = out / "results.json", samples = out / "samples.jsonl";
  if (!std::filesystem::exists(results) && !std::filesystem::exists(samples)) return;
  std::string command;
  try {
    const auto j = nlohmann::json::parse(io::read_file(results.string()));
    command = j.at("config").at("command").get<std::string>();
  } catch (const std::exception&) {
    command.clear();
  }
  if (command != "score")
    usage_error("--out {}: the directory holds {} of another run{}; score writes both files whole, so give a "
                "directory of its own",
                dir, std::filesystem::exists(results) ? "results.json" : "samples.jsonl",
                command.empty() ? "" : " (" + command + ")");
}

void run_score(const ScoreArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  if (a.bench != "ifeval") usage_error("--bench: score knows 'ifeval' only, not '{}'", a.bench);
  const std::string dataset = eval::ifeval::dataset_path(eval::resolve_data_dir(a.data));
  const auto items = eval::ifeval::load_items(dataset);
  auto rs = eval::ifeval::read_responses(a.responses, items);  // bad input fails before --out is touched
  std::optional<io::OutDirLock> lock;  // without --out the metrics are printed, nothing is written
  if (!a.out.empty()) {
    lock.emplace(a.out);
    refuse_other_runs_out(a.out);
  }
  eval::ifeval::score_all(rs);
  eval::ifeval::Accuracy acc;
  std::string samples;
  for (const auto& r : rs) {
    acc.add(r.verdict);
    samples += eval::ifeval::sample_json(r).dump() + "\n";
  }
  const nlohmann::json metrics = eval::ifeval::accuracy_json(acc);
  const std::filesystem::path out(a.out);
  if (!a.out.empty()) {
    // The responses come from elsewhere: no model of ours made them (null, SPEC.md §6's key).
    const nlohmann::json results = {
        {"kvaudit_version", kVersion},
        {"model", nullptr},
        {"config", {{"command", "score"}, {"bench", a.bench}, {"responses", a.responses}, {"dataset", dataset}}},
        {"results", {{"responses", {{"ifeval", metrics}}}}},
        {"timing", {{"total_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
                    {"samples_scored", rs.size()}}}};
    io::write_file_atomic((out / "samples.jsonl").string(), samples);
    io::write_file_atomic((out / "results.json").string(), results.dump(2) + "\n");
  }
  if (a.json) {
    std::printf("%s\n", metrics.dump().c_str());
  } else if (!a.quiet) {
    std::printf("ifeval: %zu prompts, %zu instructions\n", acc.prompts, acc.instructions);
    std::printf("  prompt strict %.4f  prompt loose %.4f  inst strict %.4f  inst loose %.4f\n", acc.prompt_strict_acc(),
                acc.prompt_loose_acc(), acc.inst_strict_acc(), acc.inst_loose_acc());
    if (!a.out.empty())
      std::printf("wrote %s and %s\n", (out / "results.json").c_str(), (out / "samples.jsonl").c_str());
  }
}

}  // namespace

void add_score(CLI::App& app) {
  auto a = std::make_shared<ScoreArgs>();
  auto* cmd = app.add_subcommand("score", "Score responses made elsewhere with the in-house IFEval scorer");
  cmd->add_option("--bench", a->bench, "Benchmark to score (ifeval)")->default_val("ifeval");
  cmd->add_option("--responses", a->responses,
                  "JSONL, one {\"key\": K, \"response\": R} or {\"prompt\": P, \"response\": R} per line "
                  "(a subset of the 541 prompts is fine; each at most once)")
      ->required();
  cmd->add_option("--out", a->out, "Output directory for results.json and samples.jsonl (without it, only the metrics are printed)");
  cmd->add_option("--data", a->data, "Datasets directory (default $KVAUDIT_DATA, else ../shared/datasets)");
  auto* quiet = cmd->add_flag("--quiet", a->quiet, "Print nothing on success");
  cmd->add_flag("--json", a->json, "Print the metrics as one JSON line")->excludes(quiet);
  cmd->callback([a] { run_score(*a); });
}

}  // namespace kvaudit::cli
