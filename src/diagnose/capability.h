// The audit's capability check (issue 11): a plan that keeps refusals but breaks instruction
// following is no fix. IFEval on a --seed subset of its prompts, generated under the baseline and
// each plan in one shared run, scored in-house (eval/ifeval), each plan against the baseline with
// McNemar's exact test on the prompts it stops or starts following (prompt-level strict).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/metrics.h"
#include "eval/pipeline.h"

namespace kvaudit::diagnose {

struct CapabilityRow {
  std::string scheme;
  eval::IfevalMetrics m;  // deltas and the test against the baseline (row 0: against itself)
  bool lost = false;      // loses_capability(m)
};

struct Capability {
  size_t prompts = 0;
  std::vector<std::string> prompt_ids;  // the IFEval subset, in order
  int max_new_tokens = 0;
  std::vector<CapabilityRow> rows;  // the baseline first, then `runs` in order
};

// rules::kCapabilityPrompts' rule: lower prompt-level strict accuracy and McNemar p < rules::kAlpha.
bool loses_capability(const eval::IfevalMetrics& m);

// Generates (or resumes from samples_path) `n` IFEval prompts, a subset drawn with `seed`, under
// runs[0] (the baseline) and the others; every sample goes to samples_path as for the safety sets.
Capability check_capability(eval::EvalSession& s, const std::vector<eval::SchemeRun>& runs, size_t n, uint64_t seed,
                            int max_new_tokens, const std::string& samples_path);

// report.json's "capability" (docs/AUDIT.md).
nlohmann::ordered_json capability_json(const Capability& c);

}  // namespace kvaudit::diagnose
