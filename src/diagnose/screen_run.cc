#include "diagnose/screen_run.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "core/error.h"
#include "core/json_number.h"
#include "diagnose/prompt_sets.h"
#include "diagnose/rules.h"
#include "diagnose/score_log.h"
#include "diagnose/screen.h"
#include "eval/metrics.h"
#include "eval/progress.h"
#include "io/atomic_file.h"
#include "kv/spec.h"

namespace kvaudit::diagnose {
namespace {

using Json = nlohmann::ordered_json;

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? eval::kNaN : s / double(v.size());
}

double median(std::vector<double> v) {
  if (v.empty()) return eval::kNaN;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

nlohmann::ordered_json run_screen(const ScreenOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.eval.kv.empty() && o.eval.kv_policy.empty()) usage_error("screen: give at least one --kv or --kv-policy");
  const PromptSetSpec calib_spec =
      parse_prompt_set(o.calib.empty() ? std::string(rules::kCalibDefault) : o.calib, "--calib");
  eval::EvalSession s(o.eval);
  const int n_layers = s.model().config.n_layers;
  // Specs and policy files ("policy:FILE") as eval names them; drop eval's fp16 baseline (index 0).
  std::vector<eval::SchemeRun> schemes =
      eval::make_scheme_runs(o.eval.kv, o.eval.kv_storage, s.backend(), o.eval.model, o.eval.kv_policy);
  schemes.erase(schemes.begin());

  // The prompts to screen are read before the calibration generates: a bad --bench stops at once.
  std::vector<eval::Prompt> prompts;
  std::vector<std::vector<int>> ids;
  std::vector<std::string> digests;
  for (const auto& p : eval::load_selected_benchmarks(o.eval, s.data_dir()).prompts)
    if (!eval::is_over_refusal_probe(p)) {
      prompts.push_back(p);
      ids.push_back(s.io().encode(p));
      digests.push_back(tokens_digest(ids.back()));
    }
  if (ids.empty()) usage_error("--bench: the selected benchmarks hold no prompt that should be refused");

  const auto calib = calibration_prompts(calib_spec, s.data_dir());
  const std::filesystem::path out_dir(o.eval.out);
  std::filesystem::create_directories(out_dir);
  const auto base = s.run(calib, {{"fp16", nullptr}}, (out_dir / "samples.jsonl").string(), "calibration: baseline");
  std::vector<std::string> refusals;
  for (const auto& p : calib)
    if (base.at({p.id, "fp16"}).refused) refusals.push_back(base.at({p.id, "fp16"}).response);
  const std::vector<int> openings = refusal_openings(s.tokenizer(), refusals);
  if (openings.empty())
    usage_error("screen: the 16-bit model refuses none of the {} calibration prompts ('{}'), so there are no refusal "
                "openings to score; choose other --calib prompts",
                calib.size(), o.calib.empty() ? std::string(rules::kCalibDefault) : o.calib);

  // Every policy scored, in one list so all share batches and one progress bar: the 16-bit model,
  // each scheme, then each layer alone under each scheme ("layers[l]=SCHEME") for single-part specs
  // (a policy file is already per layer).
  std::vector<std::string> names = {"fp16"};
  std::vector<std::shared_ptr<const kv::KvPolicy>> policies = {nullptr};
  for (const auto& r : schemes) {
    names.push_back(r.log_key());  // a policy file's scores are keyed by its plan too
    policies.push_back(r.policy);
  }
  std::vector<size_t> layers_at(schemes.size(), 0);  // where scheme k's layer 0 is; 0: none
  for (size_t k = 0; k < schemes.size(); ++k) {
    const bool from_file = schemes[k].name.rfind("policy:", 0) == 0;
    const auto parts = from_file ? std::vector<kv::SpecPart>{} : kv::parse_spec(schemes[k].name);
    if (!o.per_layer || parts.size() != 1 || !parts[0].layers.empty()) continue;
    layers_at[k] = names.size();
    for (int l = 0; l < n_layers; ++l) {
      names.push_back(fmt::format("layers[{}]={}", l, schemes[k].name));
      policies.push_back(s.scheme(names.back()).policy);
    }
  }

  nlohmann::json header = {{"screen_scores", 1},
                            {"model", o.eval.model},
                            {"device", engine::device_name(s.backend().device())},
                            {"openings", openings}};
  ScoreLog log((out_dir / "screen_scores.jsonl").string(), header, "screen");
  std::vector<std::string> prompt_ids;
  for (const auto& p : prompts) prompt_ids.push_back(p.id);
  const ScoreCheckpoint checkpoint = log.checkpoint(prompt_ids, digests, names);
  const size_t resumed = checkpoint.done.size();
  eval::Progress progress(o.eval.quiet ? nullptr : stderr, ::isatty(fileno(stderr)) != 0, "screen",
                          ids.size() * policies.size(), "prefills");
  const auto sc = prefill_scores(s.backend(), ids, policies, openings, s.args().batch_size, &progress, &checkpoint);
  progress.finish();

  // Mean shift over the prompts of policy `at` against the 16-bit model (index 0).
  const auto shifts = [&](size_t at) {
    std::vector<double> d;
    for (size_t i = 0; i < ids.size(); ++i) d.push_back(sc[at][i] - sc[0][i]);
    return d;
  };
  Json out;
  out["openings"] = openings;
  out["n_prompts"] = ids.size();
  Json rows = Json::array();
  for (size_t k = 0; k < schemes.size(); ++k) {
    const std::vector<double> shift = shifts(k + 1);
    const size_t dropped = size_t(std::count_if(shift.begin(), shift.end(), [](double d) { return d < 0; }));
    Json row = {{"scheme", schemes[k].name}, {"mean_score_shift", number_or_null(mean(shift))},
                {"median_score_shift", number_or_null(median(shift))},
                {"fraction_dropped", double(dropped) / double(ids.size())}, {"per_layer", nullptr}};
    if (layers_at[k]) {
      Json per = Json::array();
      for (int l = 0; l < n_layers; ++l)
        per.push_back({{"layer", l}, {"mean_score_shift", number_or_null(mean(shifts(layers_at[k] + size_t(l))))}});
      row["per_layer"] = per;
    }
    rows.push_back(row);
  }
  out["schemes"] = rows;
  // SPEC §5: the screen's prediction of generation flips is measured, never assumed. Here nothing
  // is generated under the schemes, so it is not measured; audit and diagnose measure it.
  out["prediction"] = {{"measured", false},
                       {"note", "a ranking by score shift only: how well it predicts generation flips is not measured "
                                "by screen (audit and diagnose report it as screen.auroc and screen.spearman)"}};
  out["timing"] = {{"total_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
                   {"prefills", ids.size() * policies.size()},
                   {"prefills_resumed", resumed}};
  io::write_file_atomic((out_dir / "screen.json").string(), out.dump(2) + "\n");
  return out;
}

}  // namespace kvaudit::diagnose
