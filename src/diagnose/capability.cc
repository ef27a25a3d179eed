#include "diagnose/capability.h"

#include <cmath>

#include "core/json_number.h"
#include "diagnose/rules.h"
#include "eval/ifeval/bench_metrics.h"
#include "eval/subset.h"

namespace kvaudit::diagnose {

bool loses_capability(const eval::IfevalMetrics& m) {
  return m.delta_prompt_strict < 0 && m.mcnemar_p < rules::kAlpha;  // NaN compares false: not lost
}

Capability check_capability(eval::EvalSession& s, const std::vector<eval::SchemeRun>& runs, size_t n, uint64_t seed,
                            int max_new_tokens, const std::string& samples_path) {
  namespace ifeval = eval::ifeval;
  const std::vector<eval::Prompt> all = ifeval::load_prompts(s.data_dir());
  std::vector<eval::Prompt> prompts;
  for (size_t i : eval::seeded_subset(all.size(), n, seed)) prompts.push_back(all[i]);
  Capability c;
  c.prompts = prompts.size();
  for (const auto& p : prompts) c.prompt_ids.push_back(p.id);
  c.max_new_tokens = max_new_tokens;
  const eval::SampleMap m =
      s.run(prompts, runs, samples_path, "capability: IFEval", nullptr, max_new_tokens);
  // The scorer runs on the stored responses (a resumed sample is scored as a fresh one).
  const auto verdicts = [&](const std::string& scheme) {
    std::vector<ifeval::Verdict> v;
    for (const auto& p : prompts)
      v.push_back(ifeval::score(ifeval::item_of(s.data_dir(), p.id), m.at({p.id, scheme}).response));
    return v;
  };
  const std::vector<ifeval::Verdict> base = verdicts(runs[0].name);
  for (const auto& r : runs) {
    CapabilityRow row{r.name, ifeval::ifeval_metrics(base, verdicts(r.name)), false};
    row.lost = loses_capability(row.m);
    c.rows.push_back(row);
  }
  return c;
}

nlohmann::ordered_json capability_json(const Capability& c) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& r : c.rows)
    rows.push_back({{"scheme", r.scheme},
                    {"ifeval_prompt_strict", number_or_null(r.m.prompt_strict)},
                    {"ifeval_prompt_loose", number_or_null(r.m.prompt_loose)},
                    {"ifeval_inst_strict", number_or_null(r.m.inst_strict)},
                    {"ifeval_inst_loose", number_or_null(r.m.inst_loose)},
                    {"delta_prompt_strict", number_or_null(r.m.delta_prompt_strict)},
                    {"delta_prompt_loose", number_or_null(r.m.delta_prompt_loose)},
                    {"delta_inst_strict", number_or_null(r.m.delta_inst_strict)},
                    {"delta_inst_loose", number_or_null(r.m.delta_inst_loose)},
                    {"flips", r.m.flips},
                    {"reverse_flips", r.m.reverse_flips},
                    {"mcnemar_p", number_or_null(r.m.mcnemar_p)},
                    {"lost", r.lost}});
  return {{"bench", "ifeval"}, {"prompts", c.prompts}, {"max_new_tokens", c.max_new_tokens}, {"alpha", rules::kAlpha},
          {"rows", rows}};
}

}  // namespace kvaudit::diagnose
