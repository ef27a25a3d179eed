// kvaudit screen (SPEC.md §5 "Screen", §7): refusal-score shifts of each --kv scheme and of each
// layer alone under it, from one prefill per prompt and scheme; screen.json in --out.
#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/eval_pipeline.h"
#include "diagnose/screen_run.h"
#include "io/out_dir_lock.h"

namespace kvaudit::cli {

void add_screen(CLI::App& app) {
  auto* cmd = app.add_subcommand("screen", "Refusal-score shifts per scheme and per layer, without generation");
  auto o = std::make_shared<diagnose::ScreenOptions>();
  add_eval_options(cmd, o->eval);
  // The screen generates only the calibration baseline and measures no perplexity.
  for (const char* name : {"--text", "--ppl-windows"}) cmd->remove_option(cmd->get_option(name));
  cmd->get_option("--out")->description(
      "output directory (screen.json, screen_scores.jsonl, the calibration's samples.jsonl; rerun to resume; one run "
      "at a time: a second run on the same --out stops with exit 2)");
  cmd->get_option("--json")->description("print screen.json instead of the table");
  cmd->get_option("--max-new-tokens")->description("of the calibration baseline (default 256; 1024 when --bench names ifeval)");
  cmd->add_option("--kv", o->eval.kv, "KV scheme spec (SPEC.md §3); repeat for several")->check(kNonEmpty);
  cmd->add_option("--kv-policy", o->eval.kv_policy,
                  "per-layer KV policy JSON file (e.g. an audit's policy.json), named policy:FILE; repeat for several");
  cmd->add_option("--calib", o->calib, "prompts whose 16-bit refusals give the refusal openings (default custom:20)");
  cmd->add_flag("--no-per-layer", [o](int64_t) { o->per_layer = false; }, "skip the per-layer scores");
  cmd->callback([o] {
    const io::OutDirLock lock(o->eval.out);  // one writer per --out (io/out_dir_lock.h)
    const auto r = diagnose::run_screen(*o);
    if (o->eval.json) {
      std::printf("%s\n", r.dump(2).c_str());
      return;
    }
    const auto num = [](const nlohmann::ordered_json& x) { return x.is_null() ? NAN : x.get<double>(); };
    std::printf("%-32s %12s %12s %10s\n", "scheme", "mean shift", "median", "dropped");
    for (const auto& s : r["schemes"])
      std::printf("%-32s %12.4f %12.4f %9.1f%%\n", s["scheme"].get<std::string>().c_str(), num(s["mean_score_shift"]),
                  num(s["median_score_shift"]), 100 * s["fraction_dropped"].get<double>());
    // The layers whose score falls most when each is alone under the scheme (all are in screen.json).
    constexpr size_t kShown = 5;
    for (const auto& s : r["schemes"]) {
      if (s["per_layer"].is_null()) continue;
      std::vector<std::pair<double, int>> by_fall;
      for (const auto& l : s["per_layer"])
        if (!l["mean_score_shift"].is_null()) by_fall.emplace_back(l["mean_score_shift"].get<double>(), l["layer"].get<int>());
      std::stable_sort(by_fall.begin(), by_fall.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      std::string line;
      for (size_t i = 0; i < std::min(kShown, by_fall.size()); ++i)
        line += fmt::format("{}{} ({:.3f})", i ? ", " : "", by_fall[i].second, by_fall[i].first);
      std::printf("%s: layers alone, largest fall first: %s\n", s["scheme"].get<std::string>().c_str(),
                  by_fall.empty() ? "none defined" : line.c_str());
    }
    std::printf("note: %s\n", r["prediction"]["note"].get<std::string>().c_str());
  });
}

}  // namespace kvaudit::cli
