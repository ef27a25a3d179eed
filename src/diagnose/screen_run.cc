#include "diagnose/screen_run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "core/json_number.h"
#include "core/error.h"
#include "diagnose/prompt_sets.h"
#include "diagnose/rules.h"
#include "diagnose/screen.h"
#include "eval/metrics.h"
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

  const auto calib = calibration_prompts(calib_spec, s.data_dir());
  std::filesystem::create_directories(o.eval.out);
  const auto base = s.run(calib, {{"fp16", nullptr}}, (std::filesystem::path(o.eval.out) / "samples.jsonl").string(),
                          "calibration: baseline");
  std::vector<std::string> refusals;
  for (const auto& p : calib)
    if (base.at({p.id, "fp16"}).refused) refusals.push_back(base.at({p.id, "fp16"}).response);
  const std::vector<int> openings = refusal_openings(s.tokenizer(), refusals);
  if (openings.empty())
    usage_error("screen: the 16-bit model refuses none of the {} calibration prompts ('{}'), so there are no refusal "
                "openings to score; choose other --calib prompts",
                calib.size(), o.calib.empty() ? std::string(rules::kCalibDefault) : o.calib);

  std::vector<std::vector<int>> ids;
  for (const auto& p : eval::load_selected_benchmarks(o.eval, s.data_dir()).prompts)
    if (!eval::is_over_refusal_probe(p)) ids.push_back(s.io().encode(p));
  if (ids.empty()) usage_error("--bench: the selected benchmarks hold no prompt that should be refused");

  std::vector<std::shared_ptr<const kv::KvPolicy>> policies = {nullptr};
  for (const auto& r : schemes) policies.push_back(r.policy);
  const auto sc = prefill_scores(s.backend(), ids, policies, openings, s.args().batch_size);

  Json out;
  out["openings"] = openings;
  out["n_prompts"] = ids.size();
  Json rows = Json::array();
  for (size_t k = 0; k < schemes.size(); ++k) {
    std::vector<double> shift;
    size_t dropped = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      shift.push_back(sc[k + 1][i] - sc[0][i]);
      dropped += shift.back() < 0;
    }
    Json row = {{"scheme", schemes[k].name}, {"mean_score_shift", number_or_null(mean(shift))},
                {"median_score_shift", number_or_null(median(shift))},
                {"fraction_dropped", double(dropped) / double(ids.size())}, {"per_layer", nullptr}};
    // Per layer: that layer alone under the scheme ("layers[l]=SCHEME"), for single-part specs
    // (a policy file is already per layer).
    const bool from_file = schemes[k].name.rfind("policy:", 0) == 0;
    const auto parts = from_file ? std::vector<kv::SpecPart>{} : kv::parse_spec(schemes[k].name);
    if (o.per_layer && parts.size() == 1 && parts[0].layers.empty()) {
      std::vector<std::shared_ptr<const kv::KvPolicy>> lp = {nullptr};
      for (int l = 0; l < n_layers; ++l) lp.push_back(s.scheme(fmt::format("layers[{}]={}", l, schemes[k].name)).policy);
      const auto ls = prefill_scores(s.backend(), ids, lp, openings, s.args().batch_size);
      Json per = Json::array();
      for (int l = 0; l < n_layers; ++l) {
        std::vector<double> d;
        for (size_t i = 0; i < ids.size(); ++i) d.push_back(ls[size_t(l) + 1][i] - ls[0][i]);
        per.push_back({{"layer", l}, {"mean_score_shift", number_or_null(mean(d))}});
      }
      row["per_layer"] = per;
    }
    rows.push_back(row);
  }
  out["schemes"] = rows;
  out["timing"] = {{"total_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  io::write_file_atomic((std::filesystem::path(o.eval.out) / "screen.json").string(), out.dump(2) + "\n");
  return out;
}

}  // namespace kvaudit::diagnose
