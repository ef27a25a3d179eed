#include "report/results_json.h"

#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include "core/json_number.h"
#include "core/version.h"
#include "io/atomic_file.h"

namespace kvaudit::report {

nlohmann::ordered_json metrics_json(const eval::BenchMetrics& m) {
  nlohmann::ordered_json j;
  j["n"] = m.n;
  j["refusal_rate"] = number_or_null(m.refusal_rate);
  j["flip_rate"] = number_or_null(m.flip_rate);
  j["flip_ci_low"] = number_or_null(m.flip_ci_low);
  j["flip_ci_high"] = number_or_null(m.flip_ci_high);
  // No prompt that should be refused (an IFEval or XSTest-safe entry): no pairs, counts undefined.
  const bool paired = !std::isnan(m.refusal_rate);
  j["flips"] = paired ? nlohmann::ordered_json(m.flips) : nlohmann::ordered_json(nullptr);
  j["reverse_flips"] = paired ? nlohmann::ordered_json(m.reverse_flips) : nlohmann::ordered_json(nullptr);
  j["mcnemar_p"] = number_or_null(m.mcnemar_p);
  j["over_refusal"] = number_or_null(m.over_refusal);
  j["ppl"] = number_or_null(m.ppl);
  j["ppl_ratio"] = number_or_null(m.ppl_ratio);
  j["kl"] = number_or_null(m.kl);
  if (m.noise) {  // the noise floor (SPEC.md §5): this scheme's flips against the bf16 control's
    j["noise_flips"] = m.noise->defined ? nlohmann::ordered_json(m.noise->noise_flips) : nlohmann::ordered_json(nullptr);
    j["vs_noise_p"] = number_or_null(m.noise->p);
    j["within_noise"] = m.noise->within ? nlohmann::ordered_json(*m.noise->within) : nlohmann::ordered_json(nullptr);
  }
  if (m.ifeval) {  // --bench ifeval (SPEC.md §4): accuracies, change vs baseline, paired test
    const auto& f = *m.ifeval;
    j["ifeval_prompt_strict"] = number_or_null(f.prompt_strict);
    j["ifeval_prompt_loose"] = number_or_null(f.prompt_loose);
    j["ifeval_inst_strict"] = number_or_null(f.inst_strict);
    j["ifeval_inst_loose"] = number_or_null(f.inst_loose);
    j["ifeval_prompt_strict_delta"] = number_or_null(f.delta_prompt_strict);
    j["ifeval_prompt_loose_delta"] = number_or_null(f.delta_prompt_loose);
    j["ifeval_inst_strict_delta"] = number_or_null(f.delta_inst_strict);
    j["ifeval_inst_loose_delta"] = number_or_null(f.delta_inst_loose);
    j["ifeval_flips"] = f.flips;
    j["ifeval_reverse_flips"] = f.reverse_flips;
    j["ifeval_mcnemar_p"] = number_or_null(f.mcnemar_p);
  }
  return j;
}

std::string results_json(const eval::RunResults& r) {
  nlohmann::ordered_json doc;
  doc["kvaudit_version"] = kVersion;
  doc["model"] = {{"path", r.model.path},
                  {"arch", r.model.arch},
                  {"params", r.model.params},
                  {"sha256", r.model.sha256}};
  // Round-trip through text keeps the sorted order of the std::map-backed config.
  doc["config"] = r.config.is_null() ? nlohmann::ordered_json::object()
                                     : nlohmann::ordered_json::parse(r.config.dump());
  nlohmann::ordered_json results = nlohmann::ordered_json::object();
  for (const auto& s : r.results) {
    if (results.contains(s.scheme)) throw std::logic_error("results_json: scheme '" + s.scheme + "' twice");
    nlohmann::ordered_json benches = nlohmann::ordered_json::object();
    for (const auto& b : s.benches) benches[b.bench] = metrics_json(b.metrics);
    results[s.scheme] = std::move(benches);
  }
  doc["results"] = std::move(results);
  doc["timing"] = r.timing.is_null() ? nlohmann::ordered_json::object() : r.timing;
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

void write_results(const std::string& dir, const eval::RunResults& r) {
  io::write_file_atomic((std::filesystem::path(dir) / "results.json").string(), results_json(r));
}

}  // namespace kvaudit::report
