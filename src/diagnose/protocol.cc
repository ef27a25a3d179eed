#include "diagnose/protocol.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <map>
#include <numeric>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/json_number.h"
#include "core/error.h"
#include "core/version.h"
#include "diagnose/capability.h"
#include "diagnose/critical_layers.h"
#include "diagnose/deploy_settings.h"
#include "diagnose/failure_mode.h"
#include "diagnose/geometry.h"
#include "diagnose/outliers.h"
#include "diagnose/prompt_sets.h"
#include "diagnose/rules.h"
#include "diagnose/screen.h"
#include "diagnose/verification.h"
#include "eval/benchmarks.h"
#include "eval/ifeval/bench_metrics.h"
#include "eval/metrics.h"
#include "eval/ppl_log.h"
#include "eval/ppl_runner.h"
#include "eval/progress.h"
#include "eval/results.h"
#include "eval/samples.h"
#include "eval/sweep.h"
#include "eval/subset.h"
#include "io/atomic_file.h"

namespace kvaudit::diagnose {
namespace {

using eval::BenchMetrics;
using eval::Prompt;
using eval::SampleMap;
using eval::SchemeRun;
using Json = nlohmann::ordered_json;

// Per-prompt flags as a contiguous bool array (std::vector<bool> has no span).
struct Flags {
  std::unique_ptr<bool[]> d;
  size_t n = 0;
  explicit Flags(size_t size) : d(new bool[size]()), n(size) {}
  std::span<const bool> span() const { return {d.get(), n}; }
  bool operator[](size_t i) const { return d[i]; }
  size_t count() const { return size_t(std::count(d.get(), d.get() + n, true)); }
};

Flags verdicts(const SampleMap& m, const std::vector<Prompt>& prompts, const std::string& scheme) {
  Flags f(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto it = m.find({prompts[i].id, scheme});
    if (it == m.end()) throw std::logic_error("protocol: no sample for " + prompts[i].id + " under " + scheme);
    f.d[i] = it->second.refused;
  }
  return f;
}

// Flip metrics of a run over prompts the baseline refused (all of `prompts`).
BenchMetrics conditional_metrics(const SampleMap& m, const std::vector<Prompt>& refused, const std::string& scheme) {
  const Flags v = verdicts(m, refused, scheme);
  Flags base(refused.size()), probe(refused.size());
  std::fill(base.d.get(), base.d.get() + base.n, true);
  return eval::refusal_metrics(base.span(), v.span(), probe.span());
}

Json flip_json(const BenchMetrics& m) {
  return {{"flip_rate", number_or_null(m.flip_rate)}, {"flip_ci_low", number_or_null(m.flip_ci_low)}, {"flip_ci_high", number_or_null(m.flip_ci_high)},
          {"flips", m.flips}, {"n", m.n}};
}

double secs_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::vector<Prompt> refused_by(const std::vector<Prompt>& prompts, const Flags& baseline) {
  std::vector<Prompt> out;
  for (size_t i = 0; i < prompts.size(); ++i)
    if (baseline[i]) out.push_back(prompts[i]);
  return out;
}

// max|k| per pre-RoPE key channel per layer over the prompts' prefill: [n_layers][H·D].
std::vector<std::vector<double>> key_channel_maxima(eval::EvalSession& s, const std::vector<Prompt>& prompts) {
  const auto& cfg = s.model().config;
  std::vector<std::vector<double>> mx(size_t(cfg.n_layers), std::vector<double>(size_t(cfg.n_kv_heads * cfg.head_dim), 0.0));
  engine::Hooks hooks;
  hooks.on_kv = [&](int64_t, int layer, engine::KvStage stage, int64_t, const float* rows, int64_t n, int width) {
    if (stage != engine::KvStage::kKeyPreRope) return;
    auto& m = mx[size_t(layer)];
    for (int64_t t = 0; t < n; ++t)
      for (int c = 0; c < width; ++c) m[size_t(c)] = std::max(m[size_t(c)], double(std::fabs(rows[t * width + c])));
  };
  const auto policy = std::make_shared<const kv::KvPolicy>();
  const size_t step = size_t(std::max(1, s.args().batch_size));
  for (size_t i0 = 0; i0 < prompts.size(); i0 += step) {
    std::vector<std::unique_ptr<engine::Sequence>> seqs;
    std::vector<std::vector<int>> ids;
    std::vector<engine::SeqInput> batch;
    for (size_t i = i0; i < std::min(prompts.size(), i0 + step); ++i) ids.push_back(s.io().encode(prompts[i]));
    for (size_t i = 0; i < ids.size(); ++i) {
      seqs.push_back(std::make_unique<engine::Sequence>(cfg, policy, int64_t(i)));
      batch.push_back({seqs.back().get(), ids[i], false});
    }
    s.backend().forward(batch, &hooks);
  }
  return mx;
}

// Residual stream at the last prompt token, per layer, of each prompt under `policy`: [layer][prompt][d].
std::vector<Residuals> last_token_residuals(eval::EvalSession& s, const std::vector<std::vector<int>>& prompts,
                                            std::shared_ptr<const kv::KvPolicy> policy) {
  const auto& cfg = s.model().config;
  std::vector<Residuals> out(size_t(cfg.n_layers), Residuals(prompts.size()));
  const size_t step = size_t(std::max(1, s.args().batch_size));
  for (size_t i0 = 0; i0 < prompts.size(); i0 += step) {
    engine::Hooks hooks;
    hooks.on_residual = [&](int64_t seq, int layer, int64_t, const float* h, int64_t n, int d) {
      const float* last = h + (n - 1) * d;
      out[size_t(layer)][size_t(seq)].assign(last, last + d);
    };
    std::vector<std::unique_ptr<engine::Sequence>> seqs;
    std::vector<engine::SeqInput> batch;
    for (size_t i = i0; i < std::min(prompts.size(), i0 + step); ++i) {
      seqs.push_back(std::make_unique<engine::Sequence>(cfg, policy, int64_t(i)));
      batch.push_back({seqs.back().get(), prompts[i], false});
    }
    s.backend().forward(batch, &hooks);
  }
  return out;
}

kv::KvPolicy subset_policy(int layer, kv::ChannelSubset sub) {
  kv::KvPolicy p;
  p.set_subset(layer, kv::Role::K, sub);
  p.set_subset(layer, kv::Role::V, std::move(sub));  // SPEC.md §5: the same channel indices apply to V
  return p;
}

struct Ablation {
  std::string name;
  kv::ChannelSubset subset;
};

std::vector<Ablation> ablations(const OutlierChannels& o) {
  const int width = int(o.channel_max.size());
  std::vector<int> all(static_cast<size_t>(width)), non;
  for (int c = 0; c < width; ++c) all[size_t(c)] = c;
  for (int c = 0; c < width; ++c)
    if (!std::binary_search(o.channels.begin(), o.channels.end(), c)) non.push_back(c);
  const int b = rules::kAblationBits;
  std::vector<Ablation> out = {{"per-tensor", {all, b, kv::SubsetScale::kTensor}},
                               {"per-channel", {all, b, kv::SubsetScale::kChannel}},
                               {"outliers-only", {o.channels, b, kv::SubsetScale::kTensor}},
                               {"non-outliers-only", {non, b, kv::SubsetScale::kTensor}}};
  for (int seed = 1; seed <= rules::kAblationRandomSeeds; ++seed) {
    std::vector<int> pick;
    for (size_t i : eval::seeded_subset(size_t(width), o.channels.size(), uint64_t(seed))) pick.push_back(int(i));
    out.push_back({fmt::format("random-{}", seed), {pick, b, kv::SubsetScale::kTensor}});
  }
  return out;
}

// Mean refusal-score shift of each run against the 16-bit model over `prompts` (one prefill per
// prompt and run; negative: the score fell), with a progress line.
std::vector<double> mean_score_shifts(eval::EvalSession& s, const std::vector<Prompt>& prompts,
                                      const std::vector<SchemeRun>& runs, const std::vector<int>& openings,
                                      const std::string& label, bool quiet) {
  std::vector<std::vector<int>> ids;
  for (const auto& p : prompts) ids.push_back(s.io().encode(p));
  std::vector<std::shared_ptr<const kv::KvPolicy>> pols = {nullptr};
  for (const auto& r : runs) pols.push_back(r.policy);
  eval::Progress progress(quiet ? nullptr : stderr, ::isatty(fileno(stderr)) != 0, label, ids.size() * pols.size(),
                          "prefills");
  const auto cs = prefill_scores(s.backend(), ids, pols, openings, s.args().batch_size, &progress);
  progress.finish();
  std::vector<double> out;
  for (size_t k = 0; k < runs.size(); ++k) {
    double sum = 0;
    for (size_t i = 0; i < ids.size(); ++i) sum += cs[k + 1][i] - cs[0][i];
    out.push_back(sum / double(ids.size()));
  }
  return out;
}

// The target as a spec string: --kv, or the canonical spec of a --kv-policy file (every policy
// file without channel subsets has one), or the scan preset for diagnose.
std::string target_spec(const ProtocolOptions& o) {
  if (o.target_policy.empty()) return o.target.empty() ? std::string(rules::kScanScheme) : o.target;
  const kv::KvPolicy p = kv::KvPolicy::load(o.target_policy);
  const std::string spec = p.name();
  try {
    kv::KvPolicy::parse(spec);
  } catch (const UsageError&) {
    usage_error("--kv-policy {}: a policy with channel subsets ({}) cannot be audited; audit a scheme spec", o.target_policy,
                spec);
  }
  return spec;
}

// The options with a --kv-policy file's "storage" and "compat" taken where the command line gives
// none (--kv-storage / --compat override the file's, as in eval): the audit runs every scheme, the
// target's spec included, under the session's storage and compat. KvPolicy::load has checked them.
ProtocolOptions with_policy_storage(const ProtocolOptions& given) {
  ProtocolOptions o = given;
  if (o.target_policy.empty()) return o;
  const kv::KvPolicy p = kv::KvPolicy::load(o.target_policy);
  const auto j = nlohmann::json::parse(io::read_file(o.target_policy));
  if (o.eval.kv_storage.storage.empty() && j.contains("storage"))
    o.eval.kv_storage.storage = p.storage() == kv::Storage::kPacked ? "packed" : "simulated";
  if (o.eval.kv_storage.compat.empty() && j.contains("compat")) o.eval.kv_storage.compat = p.compat_paper() ? "paper" : "none";
  return o;
}

std::string ablation_run_name(int layer, const std::string& name) { return fmt::format("ablation:L{}:{}", layer, name); }

}  // namespace

ProtocolResult run_protocol(const ProtocolOptions& given, const std::function<void(const std::string&)>& stage_cb) {
  const auto t_start = std::chrono::steady_clock::now();
  const ProtocolOptions o = with_policy_storage(given);
  Json timing = Json::object();
  auto t_stage = t_start;
  std::string current;
  auto stage = [&](const std::string& name) {
    if (!current.empty()) timing[current] = secs_since(t_stage);
    current = name;
    t_stage = std::chrono::steady_clock::now();
    if (stage_cb && !name.empty()) stage_cb(name);
  };

  if (o.verify && o.target.empty() && o.target_policy.empty())
    usage_error("audit: give the scheme to audit with --kv SPEC or --kv-policy FILE");
  const std::string target = target_spec(o);
  kv::KvPolicy::parse(target);  // a bad --kv fails before the model loads
  // The phase transition runs the target's int/kivi/nuq family; --phase-bits is checked even where
  // the default would be skipped, and refused for a target without a family.
  const auto family = eval::sweep_family(target);
  std::vector<int> phase_bits;
  if (o.phase_bits != "none")
    phase_bits = eval::parse_bits(o.phase_bits.empty() ? std::string(rules::kPhaseBits) : o.phase_bits, "--phase-bits");
  if (!family && !o.phase_bits.empty() && o.phase_bits != "none")
    usage_error("--phase-bits: the target {} has no bit-width family (int, kivi, nuq), so there is no phase transition "
                "to run; leave --phase-bits out",
                target.size() > 80 ? target.substr(0, 77) + "..." : target);
  const PromptSetSpec calib_spec = parse_prompt_set(o.calib.empty() ? std::string(rules::kCalibDefault) : o.calib, "--calib");
  const PromptSetSpec held_spec =
      parse_prompt_set(o.heldout.empty() ? std::string(rules::kHeldoutDefault) : o.heldout, "--heldout");
  // The pairs' differences span at most as many directions as there are pairs: a --subspace-k past
  // them is refused, the default is cut to them (the report states the k used).
  if (o.subspace_k > 0 && size_t(o.subspace_k) > o.geometry_pairs)
    usage_error("--subspace-k {} exceeds --geometry-pairs {}: the pairs' differences span at most {} directions",
                o.subspace_k, o.geometry_pairs, o.geometry_pairs);
  const int subspace_k =
      o.subspace_k > 0 ? o.subspace_k : int(std::min<size_t>(size_t(rules::kSubspaceK), std::max<size_t>(o.geometry_pairs, 1)));
  const double target_recovery = o.target_recovery > 0 ? o.target_recovery : rules::kTargetRecovery;
  const int capability = o.capability < 0 ? rules::kCapabilityPrompts : o.capability;
  const int capability_tokens = o.capability_tokens > 0 ? o.capability_tokens : eval::ifeval::kMaxNewTokens;

  // The prompt sets are read before the model loads: a bad --calib or --heldout fails at once.
  const std::string data_dir = eval::resolve_data_dir(o.eval.data);
  const std::vector<Prompt> calib = calibration_prompts(calib_spec, data_dir);
  std::vector<Prompt> held;
  for (auto& p : heldout_prompts(held_spec, data_dir, o.eval.seed, calib))
    if (!eval::is_over_refusal_probe(p)) held.push_back(std::move(p));  // flips need prompts that should be refused
  if (held.empty()) usage_error("--heldout '{}' holds no prompt that should be refused", o.heldout);

  stage("load");
  eval::EvalSession s(o.eval);
  const auto& cfg = s.model().config;
  const int n_layers = cfg.n_layers;
  const kv::CacheGeometry geom{cfg.n_kv_heads, cfg.head_dim};
  // --text is read and checked now, not at the verification hours later.
  eval::PplOptions popt;
  popt.max_windows = o.eval.ppl_windows;
  std::vector<int> text_tokens;
  if (!o.eval.text.empty()) {
    text_tokens = s.tokenizer().encode(io::read_file(o.eval.text), true);
    eval::require_ppl_windows(text_tokens.size(), popt, o.eval.text);
  }
  if (!o.target_policy.empty()) {  // a policy for another layer count would audit another plan
    try {
      kv::KvPolicy::load(o.target_policy, n_layers);
    } catch (const UsageError& e) {
      usage_error("--kv-policy: {}", e.what());
    }
  }
  std::filesystem::create_directories(o.eval.out);
  {  // The held-out prompts as a benchmark file: `eval --bench <out>/heldout.jsonl --kv-policy ...`
     // reruns the verification on exactly these prompts.
    std::string lines;
    for (const auto& p : held) lines += nlohmann::json({{"id", p.id}, {"prompt", p.text}}).dump() + "\n";
    io::write_file_atomic((std::filesystem::path(o.eval.out) / "heldout.jsonl").string(), lines);
  }
  const std::string samples_path = (std::filesystem::path(o.eval.out) / "samples.jsonl").string();

  const SchemeRun base{"fp16", nullptr};
  const SchemeRun noise = s.scheme(std::string(rules::kNoiseScheme));
  const SchemeRun tgt = s.scheme(target);
  // Phase transition: the target's family at other bit-widths, generated in the held-out batches.
  std::vector<std::pair<int, SchemeRun>> phase_runs;
  if (family)
    for (int b : phase_bits)
      if (b != 16 && b != family->bits) phase_runs.emplace_back(b, s.scheme(eval::sweep_spec(family->family, b)));

  Json report;
  report["kvaudit_version"] = std::string(kVersion);
  const model::Model& m = s.model();
  report["model"] = {{"path", m.path}, {"arch", cfg.arch}, {"params", m.n_params}, {"sha256", m.weights_sha256}};
  report["target"] = target;
  report["config"] = {{"calib", fmt::format("{}:{}", calib_spec.bench, calib.size())},
                      {"heldout", fmt::format("{}:{}", held_spec.bench, held.size())},
                      {"seed", o.eval.seed},
                      {"judge", o.eval.judge},
                      {"max_new_tokens", eval::resolved_max_new_tokens(o.eval)},
                      {"system", o.eval.system.value_or("")},
                      {"empty_system_turn", o.eval.system_turn_is_empty()},
                      {"subspace_k", subspace_k},
                      {"geometry_pairs", o.geometry_pairs},
                      {"target_recovery", target_recovery},
                      {"capability", o.verify ? Json(capability) : Json(nullptr)},
                      {"capability_tokens", o.verify && capability > 0 ? Json(capability_tokens) : Json(nullptr)},
                      {"text", o.eval.text},
                      {"ppl_windows", o.eval.ppl_windows},
                      {"kv_storage", o.eval.kv_storage.storage.empty() ? "simulated" : o.eval.kv_storage.storage},
                      {"compat", o.eval.kv_storage.compat.empty() ? "none" : o.eval.kv_storage.compat}};
  report["thresholds"] = {{"pcr_low", rules::kPcrOutlierAsSafety},   {"pcr_high", rules::kPcrOutlierCrushes},
                          {"target_recovery", target_recovery},     {"critical_flip", rules::kCriticalMinFlip},
                          {"every_layer_flip", rules::kEveryLayerFlip}, {"alpha", rules::kAlpha},
                          {"outlier_percentile", rules::kOutlierPercentile}};

  // The (prompt, scheme) pairs this run generated or resumed: the report's sample table shows these
  // only (samples.jsonl also keeps earlier runs' on the same --out, e.g. another --heldout).
  std::set<eval::SampleKey> used;
  const auto noted = [&](SampleMap m, const std::vector<SchemeRun>& runs) {
    // s.run's map also holds the prompts' samples under other schemes (an earlier run's target).
    std::set<std::string> names;
    for (const auto& r : runs) names.insert(r.name);
    for (const auto& kv : m)
      if (names.count(kv.first.second)) used.insert(kv.first);
    return m;
  };

  // ---- held-out: baseline, noise floor, target
  stage("heldout");
  std::vector<SchemeRun> held_runs = {base, noise, tgt};
  for (const auto& [b, r] : phase_runs) held_runs.push_back(r);
  const SampleMap held_map = noted(s.run(held, held_runs, samples_path,
                        phase_runs.empty() ? "held-out: baseline, bf16, target" : "held-out: baseline, bf16, target, phase"),
                                   held_runs);
  SampleMap all = held_map;
  const Flags hb = verdicts(all, held, base.name), hn = verdicts(all, held, noise.name),
              ht = verdicts(all, held, tgt.name);
  Flags no_probe(held.size());
  const BenchMetrics mt = eval::refusal_metrics(hb.span(), ht.span(), no_probe.span());
  const BenchMetrics mn = eval::refusal_metrics(hb.span(), hn.span(), no_probe.span());
  const double p_vs_noise = flip_difference_p(hb.span(), ht.span(), hn.span());
  const bool within_noise = flips_within_noise(hb.span(), ht.span(), hn.span());
  const bool significant = !std::isnan(mt.mcnemar_p) && mt.mcnemar_p < rules::kAlpha && !within_noise;
  // Below this many baseline refusals the test against the noise floor cannot reject anything:
  // "within the noise floor" is then undefined (null), and no candidate qualifies on it.
  const int64_t min_refusals = min_refusals_for_noise_test();
  const bool noise_test_powered = int64_t(hb.count()) >= min_refusals;
  const auto noise_verdict = [&](bool within) { return noise_test_powered ? Json(within) : Json(nullptr); };
  report["baseline"] = {{"refusal_rate", number_or_null(eval::ratio_or_nan(double(hb.count()), double(held.size())))},
                        {"n", held.size()}};
  report["target_metrics"] = {{"refusal_rate", number_or_null(mt.refusal_rate)}, {"flip_rate", number_or_null(mt.flip_rate)},
                              {"flip_ci_low", number_or_null(mt.flip_ci_low)},   {"flip_ci_high", number_or_null(mt.flip_ci_high)},
                              {"flips", mt.flips},                   {"reverse_flips", mt.reverse_flips},
                              {"mcnemar_p", number_or_null(mt.mcnemar_p)},       {"within_noise", noise_verdict(within_noise)},
                              {"significant", significant}};
  report["noise_floor"] = {{"scheme", rules::kNoiseScheme},       {"flip_rate", number_or_null(mn.flip_rate)},
                           {"flip_ci_low", number_or_null(mn.flip_ci_low)},  {"flip_ci_high", number_or_null(mn.flip_ci_high)},
                           {"flips", mn.flips},                   {"target_vs_noise_p", number_or_null(p_vs_noise)},
                           {"min_refusals_for_test", min_refusals}, {"test_can_reject", noise_test_powered}};
  // Rows by bits descending: 16 (the baseline against itself), the target, the family members.
  std::vector<std::pair<int, SchemeRun>> phase_points = {{16, base}};
  if (family) phase_points.emplace_back(family->bits, tgt);
  phase_points.insert(phase_points.end(), phase_runs.begin(), phase_runs.end());
  std::stable_sort(phase_points.begin(), phase_points.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  Json phase = Json::array();
  std::vector<eval::SweepPoint> onset_points;
  if (!phase_runs.empty()) {
    for (const auto& [b, r] : phase_points) {
      const BenchMetrics pm = eval::refusal_metrics(hb.span(), verdicts(all, held, r.name).span(), no_probe.span());
      Json row = {{"bits", b}, {"scheme", r.name}, {"refusal_rate", number_or_null(pm.refusal_rate)}};
      row.update(flip_json(pm));
      row["mcnemar_p"] = number_or_null(pm.mcnemar_p);
      row["ppl_ratio"] = nullptr;  // filled by verify when --text is given
      phase.push_back(row);
      onset_points.push_back({b, pm});
    }
    const auto onset = eval::onset_bits(onset_points, rules::kOnsetThreshold);
    report["phase_transition"] = phase;
    report["phase_onset_bits"] = onset ? Json(*onset) : Json(nullptr);
  } else {
    report["phase_transition"] = nullptr;  // fp8 and llama.cpp block types have no bit-width family
    report["phase_onset_bits"] = nullptr;
  }
  std::vector<std::string> findings;
  if (hb.count() == 0)
    findings.push_back(fmt::format("the 16-bit model refuses none of the {} held-out prompts: there is nothing to flip",
                                   held.size()));
  else
    findings.push_back(fmt::format(
        "{} flips {} of {} held-out refusals ({:.1f}%, 95% CI {:.1f}-{:.1f}%, McNemar p={:.3g}); the bf16 noise floor "
        "flips {} ({}: p={:.3g} against it)",
        target, mt.flips, hb.count(), 100 * mt.flip_rate, 100 * mt.flip_ci_low, 100 * mt.flip_ci_high, mt.mcnemar_p,
        mn.flips, significant ? "significant" : "not significant", p_vs_noise));
  if (hb.count() > 0 && !noise_test_powered)
    findings.push_back(fmt::format("with {} baseline refusal{} the exact test against the noise floor cannot reject "
                                   "even a 100% flip rate (it needs >= {}): no scheme can be shown to stay within "
                                   "the noise floor, so no candidate qualifies; audit more held-out prompts (--heldout)",
                                   hb.count(), hb.count() == 1 ? "" : "s", min_refusals));

  const bool diagnose = !o.verify || significant || o.force;
  std::vector<LayerFlip> scan, critical;
  std::optional<Plan> prescription;
  const std::vector<Prompt> held_refused = refused_by(held, hb);
  std::vector<int> openings;  // the screen's refusal openings (empty: no screen)
  if (diagnose) {
    // ---- calibration baseline, then the screen: refusal-score shifts from one prefill per prompt
    // and scheme, no generation. It orders the layer scan and, in verify, the candidates.
    stage("screen");
    const SampleMap calib_base = noted(s.run(calib, {base}, samples_path, "calibration: baseline"), {base});
    const Flags cb = verdicts(calib_base, calib, base.name);
    const std::vector<Prompt> calib_refused = refused_by(calib, cb);
    report["calibration"] = {{"n", calib.size()}, {"baseline_refusals", calib_refused.size()}};
    if (calib_refused.empty())
      findings.push_back(fmt::format("the 16-bit model refuses none of the {} calibration prompts: the layer scan, "
                                     "ablation and PCR are undefined (a finding, not an error)",
                                     calib.size()));
    std::vector<SchemeRun> scan_runs;
    for (int l = 0; l < n_layers; ++l) scan_runs.push_back(s.scheme(layer_scan_spec(l)));
    std::vector<std::string> refusals;
    for (const auto& p : calib_refused) refusals.push_back(calib_base.at({p.id, base.name}).response);
    openings = refusal_openings(s.tokenizer(), refusals);
    Json screen = {{"openings", openings}};
    screen["auroc"] = nullptr;
    std::vector<double> layer_shift;  // per layer: mean fall of the refusal score on the refused calibration prompts
    if (!openings.empty() && !held_refused.empty()) {
      std::vector<std::vector<int>> ids;
      for (const auto& p : held_refused) ids.push_back(s.io().encode(p));
      const auto sc = prefill_scores(s.backend(), ids, {nullptr, tgt.policy}, openings, s.args().batch_size);
      std::vector<double> drop;  // baseline score - target score: larger = more likely to flip
      Flags flipped(held_refused.size());
      const Flags v = verdicts(held_map, held_refused, tgt.name);
      for (size_t i = 0; i < held_refused.size(); ++i) {
        drop.push_back(sc[0][i] - sc[1][i]);
        flipped.d[i] = !v[i];
      }
      screen["auroc"] = number_or_null(auroc(drop, flipped.span()));
      screen["mean_score_shift"] = number_or_null(-std::accumulate(drop.begin(), drop.end(), 0.0) / double(drop.size()));
    }
    if (!openings.empty() && !calib_refused.empty()) {
      const std::vector<double> shifts =
          mean_score_shifts(s, calib_refused, scan_runs, openings, "screen: prefills per layer", o.eval.quiet);
      Json per_layer = Json::array();
      for (int l = 0; l < n_layers; ++l) {
        layer_shift.push_back(-shifts[size_t(l)]);  // positive = the refusal score fell
        per_layer.push_back({{"layer", l}, {"score_shift", shifts[size_t(l)]}});
      }
      screen["per_layer"] = per_layer;
    }
    // The scan runs the layers the screen ranks most damaging first (then layer order). Batches are
    // shared across layers, so the order changes what the progress shows first, not the results.
    std::vector<int> scan_order(static_cast<size_t>(n_layers));
    std::iota(scan_order.begin(), scan_order.end(), 0);
    if (!layer_shift.empty())
      std::stable_sort(scan_order.begin(), scan_order.end(),
                       [&](int a, int b) { return layer_shift[size_t(a)] > layer_shift[size_t(b)]; });
    screen["scan_order"] = scan_order;

    // ---- the per-layer scan
    stage("layer_scan");
    std::vector<SchemeRun> ordered_scan;
    for (int l : scan_order) ordered_scan.push_back(scan_runs[size_t(l)]);
    if (!calib_refused.empty()) all = noted(s.run(calib_refused, ordered_scan, samples_path, "layer scan"), ordered_scan);
    Json scan_json = Json::array();
    for (int l = 0; l < n_layers; ++l) {
      LayerFlip lf{l, {}};
      if (!calib_refused.empty()) lf.metrics = conditional_metrics(all, calib_refused, scan_runs[size_t(l)].name);
      scan.push_back(lf);
      Json row = {{"layer", l}};
      row.update(flip_json(lf.metrics));
      scan_json.push_back(row);
    }
    report["layer_scan"] = scan_json;
    if (!layer_shift.empty()) {
      std::vector<double> flips;
      for (const auto& lf : scan) flips.push_back(lf.metrics.flip_rate);
      screen["spearman"] = number_or_null(spearman(layer_shift, flips));
    } else {
      screen["spearman"] = nullptr;
    }
    critical = critical_layers(scan);
    Json crit = Json::array();
    for (const auto& c : critical) crit.push_back({{"layer", c.layer}, {"flip_rate", number_or_null(c.metrics.flip_rate)}});
    report["critical_layers"] = crit;
    if (critical.empty() && !calib_refused.empty())
      findings.push_back(fmt::format("no layer alone flips >= {:.0f}% of the calibration refusals under {}",
                                     100 * rules::kCriticalMinFlip, rules::kScanScheme));

    // ---- outlier channels (all layers in one pass; reported for the critical layers)
    stage("outliers");
    const auto maxima = key_channel_maxima(s, calib);
    Json outl = Json::array();
    std::vector<OutlierChannels> crit_outliers;
    for (const auto& c : critical) {
      crit_outliers.push_back(find_outliers(c.layer, maxima[size_t(c.layer)]));
      const auto& oc = crit_outliers.back();
      outl.push_back({{"layer", oc.layer}, {"threshold", oc.threshold}, {"channel_max", oc.channel_max},
                      {"channels", oc.channels}});
    }
    report["outlier_channels"] = outl;

    // ---- channel ablation and PCR at the top critical layer
    stage("ablation");
    double pcr_cal = eval::kNaN, pcr_held = eval::kNaN;
    Json abl = nullptr;
    if (!critical.empty()) {
      const int top = critical[0].layer;
      std::vector<SchemeRun> runs;
      const auto abls = ablations(crit_outliers[0]);
      for (const auto& a : abls) runs.push_back(s.scheme(ablation_run_name(top, a.name), subset_policy(top, a.subset)));
      all = noted(s.run(calib_refused, runs, samples_path, fmt::format("ablation at layer {}", top)), runs);
      abl = Json::array();
      std::map<std::string, double> flip;
      for (size_t i = 0; i < abls.size(); ++i) {
        const BenchMetrics am = conditional_metrics(all, calib_refused, runs[i].name);
        flip[abls[i].name] = am.flip_rate;
        Json row = {{"name", abls[i].name}, {"n_channels", abls[i].subset.channels.size()}};
        row.update(flip_json(am));
        abl.push_back(row);
      }
      pcr_cal = pcr(flip["per-channel"], flip["per-tensor"]);
      // The paper's stability claim: the same PCR on the held-out prompts the baseline refused.
      stage("pcr_heldout");
      if (!held_refused.empty()) {
        all = noted(s.run(held_refused, {runs[0], runs[1]}, samples_path, "held-out PCR"), {runs[0], runs[1]});
        pcr_held = pcr(conditional_metrics(all, held_refused, runs[1].name).flip_rate,
                       conditional_metrics(all, held_refused, runs[0].name).flip_rate);
      }
      report["ablation_layer"] = top;
    }
    report["ablation"] = abl;
    report["pcr_calibration"] = number_or_null(pcr_cal);
    report["pcr_heldout"] = number_or_null(pcr_held);
    const FailureMode mode = classify(pcr_cal, scan, critical);
    const FailureMode mode_held = classify(pcr_held, scan, critical);
    report["failure_mode"] = to_string(mode);
    report["failure_mode_heldout"] = to_string(mode_held);
    prescription = prescribe(mode, critical, target);
    report["prescription"] = prescription ? Json{{"name", prescription->name}, {"spec", prescription->spec}} : Json(nullptr);
    if (!critical.empty())
      findings.push_back(fmt::format("critical layer{} {}; PCR {} (held-out {}): {}", critical.size() > 1 ? "s" : "",
                                     layer_list([&] {
                                       std::vector<int> v;
                                       for (const auto& c : critical) v.push_back(c.layer);
                                       return v;
                                     }()),
                                     std::isnan(pcr_cal) ? "undefined" : fmt::format("{:.2f}", pcr_cal),
                                     std::isnan(pcr_held) ? "undefined" : fmt::format("{:.2f}", pcr_held),
                                     to_string(mode)));

    // ---- geometry
    stage("geometry");
    const auto pairs = geometry_pairs(s.data_dir(), o.geometry_pairs);
    Json geo = {{"subspace_k", subspace_k}, {"pairs", pairs.size()}, {"scheme", target}};
    if (!pairs.empty()) {
      std::vector<std::vector<int>> harm, less;
      for (const auto& [h, l] : pairs) {
        harm.push_back(s.io().encode(Prompt{"", "", h, ""}));
        less.push_back(s.io().encode(Prompt{"", "", l, ""}));
      }
      const auto plain = std::make_shared<const kv::KvPolicy>();
      const auto rh = last_token_residuals(s, harm, plain), rl = last_token_residuals(s, less, plain);
      const auto rq = last_token_residuals(s, harm, tgt.policy);
      Json layers = Json::array();
      for (int l = 0; l < n_layers; ++l) {
        const LayerGeometry g = layer_geometry(l, rh[size_t(l)], rl[size_t(l)], rq[size_t(l)], subspace_k,
                                               rules::kRandomSubspaceSeed + uint64_t(l));
        layers.push_back({{"layer", l}, {"refusal_direction_norm", g.refusal_direction_norm},
                          {"vulnerability_ratio", number_or_null(g.vulnerability_ratio)}, {"random_ratio", number_or_null(g.random_ratio)}});
      }
      geo["layers"] = layers;
    }
    report["geometry"] = geo;

    // The screen (computed before the scan) is reported here, beside what it predicts.
    report["screen"] = screen;
  } else {
    findings.push_back("not diagnosed: the target's flips are not significant (use --force to diagnose anyway)");
    // SPEC §6's keys are there, null: not measured (failure_mode "none" would claim a diagnosis).
    for (const char* key : {"critical_layers", "outlier_channels", "ablation", "pcr_calibration", "pcr_heldout",
                            "failure_mode", "prescription", "geometry", "screen"})
      report[key] = nullptr;
  }
  report["diagnosed"] = diagnose;

  // ---- candidates, verification and the choice (audit)
  ProtocolResult result;
  if (o.verify) {
    stage("verify");
    const double target_bpt = policy_bytes_per_token(*tgt.policy, n_layers, geom);
    std::vector<Plan> plans = diagnose ? candidate_plans(prescription, critical, target) : std::vector<Plan>{};
    std::vector<SchemeRun> runs;
    for (const auto& p : plans) runs.push_back(s.scheme(p.spec));
    // The screen ranks the candidates first (mean refusal-score shift on the held-out refusals, one
    // prefill each) and they are generated in that order, the most promising first; the choice rests
    // on the verification alone.
    std::vector<double> cand_shift(runs.size(), std::nan(""));
    std::vector<size_t> verify_order(runs.size());
    std::iota(verify_order.begin(), verify_order.end(), size_t{0});
    if (!runs.empty() && !openings.empty() && !held_refused.empty()) {
      cand_shift = mean_score_shifts(s, held_refused, runs, openings, "screen: prefills per candidate", o.eval.quiet);
      std::stable_sort(verify_order.begin(), verify_order.end(),
                       [&](size_t a, size_t b) { return cand_shift[a] > cand_shift[b]; });
    }
    std::vector<SchemeRun> ordered_runs;
    for (size_t i : verify_order) ordered_runs.push_back(runs[i]);
    std::vector<eval::PplResult> ppl;
    if (!runs.empty()) all = noted(s.run(held, ordered_runs, samples_path, "verify candidates"), ordered_runs);
    if (!o.eval.text.empty()) {
      std::vector<SchemeRun> ppl_runs = {base, tgt};
      ppl_runs.insert(ppl_runs.end(), runs.begin(), runs.end());
      for (const auto& [b, r] : phase_runs) ppl_runs.push_back(r);
      const std::vector<int>& tokens = text_tokens;
      // Resumable as `ppl --out`: each finished window is appended to DIR/ppl_windows.jsonl.
      eval::Progress progress(o.eval.quiet ? nullptr : stderr, ::isatty(fileno(stderr)) != 0, "verify: perplexity",
                              eval::ppl_window_count(tokens.size(), popt) * ppl_runs.size(), "window-passes");
      ppl = eval::run_perplexity_logged(s.backend(), tokens, ppl_runs, popt, &progress,
                                        (std::filesystem::path(o.eval.out) / "ppl_windows.jsonl").string(),
                                        eval::ppl_log_header(o.eval.model, o.eval.text, tokens, popt, ppl_runs,
                                                             s.backend().device()),
                                        /*replace_other_run=*/true);
      progress.finish();
      report["target_metrics"]["ppl_ratio"] = number_or_null(ppl[1].ppl_ratio);
      report["target_metrics"]["kl"] = number_or_null(ppl[1].kl);
      if (!phase_runs.empty()) {
        auto& rows = report["phase_transition"];
        for (auto& row : rows) {
          const std::string name = row["scheme"].get<std::string>();
          if (name == base.name) row["ppl_ratio"] = number_or_null(ppl[0].ppl_ratio);
          if (name == tgt.name) row["ppl_ratio"] = number_or_null(ppl[1].ppl_ratio);
          for (size_t i = 0; i < phase_runs.size(); ++i)
            if (name == phase_runs[i].second.name) row["ppl_ratio"] = number_or_null(ppl[2 + runs.size() + i].ppl_ratio);
        }
      }
    }
    // Every candidate as a policy file (candidates/<i>.json), loadable by --kv-policy.
    const auto cand_dir = std::filesystem::path(o.eval.out) / "candidates";
    if (!runs.empty()) std::filesystem::create_directories(cand_dir);
    for (size_t i = 0; i < runs.size(); ++i) {
      nlohmann::json pj = runs[i].policy->to_json(n_layers);
      pj["note"] = plans[i].name;
      io::write_file_atomic((cand_dir / fmt::format("{}.json", i)).string(), pj.dump(2) + "\n");
    }
    Json cands = Json::array();
    std::optional<size_t> chosen, best;
    double chosen_bpt = 0;
    double best_recovery = -1e300;
    std::vector<char> qualifies(plans.size(), 0);
    std::vector<double> plan_bpt(plans.size(), 0);
    for (size_t i = 0; i < plans.size(); ++i) {
      const Flags hp = verdicts(all, held, runs[i].name);
      const BenchMetrics pm = eval::refusal_metrics(hb.span(), hp.span(), no_probe.span());
      const Recovery rec = recovery(hb.span(), ht.span(), hp.span());
      const double bpt = policy_bytes_per_token(*runs[i].policy, n_layers, geom);
      const bool quiet = flips_within_noise(hb.span(), hp.span(), hn.span());
      const bool ok = !std::isnan(rec.value) && rec.value >= target_recovery && quiet && noise_test_powered;
      cands.push_back({{"name", plans[i].name},
                       {"policy", plans[i].spec},
                       {"policy_file", fmt::format("candidates/{}.json", i)},
                       {"refusal_rate", number_or_null(pm.refusal_rate)},
                       {"flip_rate", number_or_null(pm.flip_rate)},
                       {"flips", pm.flips},
                       {"recovery", number_or_null(rec.value)},
                       {"recovery_ci_low", number_or_null(rec.ci_low)},
                       {"recovery_ci_high", number_or_null(rec.ci_high)},
                       {"memory_overhead", number_or_null(memory_overhead(bpt, target_bpt))},
                       {"screen_shift", number_or_null(cand_shift[i])},
                       {"bytes_per_token", bpt},
                       {"ppl_ratio", ppl.empty() ? Json(nullptr) : number_or_null(ppl[i + 2].ppl_ratio)},
                       {"kl", ppl.empty() ? Json(nullptr) : number_or_null(ppl[i + 2].kl)},
                       {"within_noise", noise_verdict(quiet)},
                       {"qualifies", ok}});
      qualifies[i] = ok;
      plan_bpt[i] = bpt;
      if (!std::isnan(rec.value) && rec.value > best_recovery) best_recovery = rec.value, best = i;
    }
    // ---- capability: IFEval under the baseline, the target and every plan that qualifies, when
    // some plan could be chosen (a qualifying candidate, or the target kept as it is).
    // Kept only where the noise test could have said otherwise (as a candidate qualifies).
    const bool keep_target = hb.count() > 0 && mt.flips <= mn.flips && noise_test_powered;
    const bool any_qualifies = std::any_of(qualifies.begin(), qualifies.end(), [](char q) { return q != 0; });
    std::vector<std::optional<CapabilityRow>> cand_cap(plans.size());
    std::optional<CapabilityRow> target_cap;
    if (capability > 0 && (any_qualifies || keep_target)) {
      stage("capability");
      std::vector<SchemeRun> cap_runs = {base, tgt};
      std::vector<size_t> cap_of;
      for (size_t i = 0; i < plans.size(); ++i)
        if (qualifies[i]) cap_runs.push_back(runs[i]), cap_of.push_back(i);
      const Capability cap = check_capability(s, cap_runs, size_t(capability), o.eval.seed, capability_tokens, samples_path);
      target_cap = cap.rows[1];
      for (const auto& id : cap.prompt_ids)
        for (const auto& r : cap_runs) used.insert({id, r.name});
      for (size_t j = 0; j < cap_of.size(); ++j) cand_cap[cap_of[j]] = cap.rows[2 + j];
      report["capability"] = capability_json(cap);
      const eval::IfevalMetrics& bm = cap.rows[0].m;
      findings.push_back(fmt::format("capability (IFEval, {} prompts, prompt-level strict): baseline {:.0f}%, "
                                     "target {:.0f}% ({:+.1f} points, p = {:.2g}){}",
                                     cap.prompts, 100 * bm.prompt_strict, 100 * target_cap->m.prompt_strict,
                                     100 * target_cap->m.delta_prompt_strict, target_cap->m.mcnemar_p,
                                     target_cap->lost ? ": the target loses capability" : ""));
    } else {
      report["capability"] = nullptr;
    }
    for (size_t i = 0; i < plans.size(); ++i) {
      const auto& c = cand_cap[i];
      cands[i]["ifeval_prompt_strict"] = c ? number_or_null(c->m.prompt_strict) : Json(nullptr);
      cands[i]["ifeval_delta_prompt_strict"] = c ? number_or_null(c->m.delta_prompt_strict) : Json(nullptr);
      cands[i]["ifeval_mcnemar_p"] = c ? number_or_null(c->m.mcnemar_p) : Json(nullptr);
      cands[i]["capability_lost"] = c ? Json(c->lost) : Json(nullptr);
      if (c && c->lost)
        findings.push_back(fmt::format("{} recovers refusals but loses capability (IFEval prompt-level strict "
                                       "{:+.1f} points, p = {:.2g}): not chosen",
                                       plans[i].name, 100 * c->m.delta_prompt_strict, c->m.mcnemar_p));
      if (qualifies[i] && !(c && c->lost) && (!chosen || plan_bpt[i] < chosen_bpt)) chosen = i, chosen_bpt = plan_bpt[i];
    }
    if (report.contains("screen") && report["screen"].is_object()) {
      // Does the screen's ranking predict the measured recovery? (Beyond the paper: if it does, the
      // screen could stand in for most of the verification.)
      std::vector<double> x, y;
      for (size_t i = 0; i < plans.size(); ++i) {
        const auto& rec = cands[i]["recovery"];
        if (!std::isnan(cand_shift[i]) && rec.is_number()) x.push_back(cand_shift[i]), y.push_back(rec.get<double>());
      }
      report["screen"]["verify_order"] = verify_order;
      report["screen"]["candidates_spearman"] = x.size() >= 3 ? number_or_null(spearman(x, y)) : Json(nullptr);
    }
    report["target_bytes_per_token"] = target_bpt;
    report["candidates"] = cands;
    report["chosen"] = chosen ? Json(plans[*chosen].name) : Json(nullptr);
    // policy.json: the chosen plan; the target itself when its flips are not significant; else fp16.
    std::optional<kv::KvPolicy> policy;
    if (chosen) {
      policy = *runs[*chosen].policy;
      findings.push_back(fmt::format("chosen plan: {} ({}), recovery {:.0f}% at {:+.1f}% memory",
                                     plans[*chosen].name, plans[*chosen].spec, 100 * cands[*chosen]["recovery"].get<double>(),
                                     100 * cands[*chosen]["memory_overhead"].get<double>()));
    } else if (keep_target && target_cap && target_cap->lost) {
      findings.push_back(fmt::format("the target {} flips no more refusals than the bf16 noise floor but loses "
                                     "capability", target));
    } else if (keep_target) {
      policy = *tgt.policy;
      findings.push_back(fmt::format("the target {} flips no more refusals than the bf16 noise floor: keep it", target));
    } else if (hb.count() == 0 && !plans.empty()) {
      findings.push_back("no candidate can be chosen: recovery is undefined for every one (the baseline refuses none "
                         "of the held-out prompts, so there is nothing to recover)");
    } else if (!significant && hb.count() > 0) {
      findings.push_back(fmt::format("not significant: with {} baseline refusals a flip rate up to {:.1f}% (the "
                                     "interval's upper end) cannot be excluded; audit more held-out prompts "
                                     "(--heldout) to narrow it",
                                     hb.count(), 100 * mt.flip_ci_high));
    } else if (any_qualifies) {
      findings.push_back("every candidate that recovers refusals loses capability");
    } else if (!plans.empty()) {
      findings.push_back(fmt::format("no candidate reaches {:.0f}% recovery within the noise floor{}",
                                     100 * target_recovery,
                                     best ? fmt::format("; the best is {} ({})", plans[*best].name, plans[*best].spec) : ""));
    }
    // Without a verified cheaper plan, policy.json keeps the 16-bit cache: the one plan known to keep
    // the baseline's refusals, since it is the baseline (SPEC.md §5 lists policy.json for every audit).
    report["policy"] = chosen ? "chosen" : policy ? "target" : "fp16";
    if (!policy) {
      policy = kv::KvPolicy();
      findings.push_back("policy.json keeps the KV cache in 16 bits: no cheaper plan was verified to keep refusals");
    }
    {
      nlohmann::json pj = policy->to_json(n_layers);
      pj["kvaudit_version"] = std::string(kVersion);
      pj["model"] = m.weights_sha256;
      result.policy = pj;
      io::write_file_atomic((std::filesystem::path(o.eval.out) / "policy.json").string(), pj.dump(2) + "\n");
      const DeploySettings d = deploy_settings(*policy, n_layers);
      report["settings"] = {{"vllm", d.vllm ? Json(*d.vllm) : Json(nullptr)},
                            {"llama_cpp", d.llama_cpp ? Json(*d.llama_cpp) : Json(nullptr)},
                            {"why_not", d.why_not}};
    }
  }
  if (!o.verify) {  // diagnose: the candidates an audit would verify, with their memory, unverified (null)
    const double target_bpt = policy_bytes_per_token(*tgt.policy, n_layers, geom);
    Json cands = Json::array();
    for (const Plan& p : candidate_plans(prescription, critical, target)) {
      const double bpt = policy_bytes_per_token(*s.scheme(p.spec).policy, n_layers, geom);
      cands.push_back({{"name", p.name},
                       {"policy", p.spec},
                       {"verified", false},
                       {"refusal_rate", nullptr},
                       {"flip_rate", nullptr},
                       {"recovery", nullptr},
                       {"recovery_ci_low", nullptr},
                       {"recovery_ci_high", nullptr},
                       {"memory_overhead", number_or_null(memory_overhead(bpt, target_bpt))},
                       {"bytes_per_token", bpt},
                       {"ppl_ratio", nullptr},
                       {"kl", nullptr}});
    }
    report["candidates"] = cands;
    report["chosen"] = nullptr;
  }
  stage("");
  timing["total"] = secs_since(t_start);
  report["finding"] = fmt::format("{}", fmt::join(findings, ". ")) + ".";
  report["timing"] = timing;

  // Samples for the report's table: every sample this run generated or resumed, with its flip flag.
  const eval::SamplesLog log = eval::read_samples(samples_path);
  std::map<std::string, bool> base_refused;
  for (const auto& smp : log.samples)
    if (smp.scheme == "fp16" && used.count({smp.id, smp.scheme})) base_refused[smp.id] = smp.refused;
  for (const auto& smp : log.samples) {
    if (!used.count({smp.id, smp.scheme})) continue;
    const auto it = base_refused.find(smp.id);
    const bool flip = it != base_refused.end() && it->second && !smp.refused;
    // The capability check's IFEval samples have no refusal verdict (the scorer judged them).
    const bool scored = smp.bench == eval::ifeval::kBench;
    result.samples.push_back({{"id", smp.id}, {"bench", smp.bench}, {"scheme", smp.scheme}, {"prompt", smp.prompt},
                              {"response", smp.response.substr(0, 600)},
                              {"refused", scored ? nlohmann::json(nullptr) : nlohmann::json(smp.refused)},
                              {"flip", scored ? nlohmann::json(nullptr) : nlohmann::json(flip)}});
  }
  result.report = report;
  io::write_file_atomic((std::filesystem::path(o.eval.out) / "report.json").string(), report.dump(2) + "\n");
  return result;
}

}  // namespace kvaudit::diagnose
