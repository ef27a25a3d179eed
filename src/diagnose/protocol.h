// The diagnosis and audit protocol (SPEC.md §5), stage by stage over one EvalSession:
//   held-out: baseline, bf16 noise floor and target -> significance
//   calibration: baseline -> per-layer scan -> outliers -> channel ablation -> PCR (and held-out PCR)
//   -> failure mode and prescription; geometry; screen
//   audit only: candidates verified on the held-out prompts -> capability (IFEval) of the baseline,
//   the target and every candidate that recovers -> the cheapest that recovers and keeps capability.
// Every generated sample goes to <out>/samples.jsonl as it is judged, so a killed run resumes
// without regenerating one; prefill-only stages (outliers, geometry, screen) are recomputed.
// Flip rates are conditional on baseline refusals, so the per-layer scan and the ablations generate
// only the calibration prompts the baseline refused: the rates are the same, the cost is not.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/pipeline.h"
#include "kv/policy.h"

namespace kvaudit::diagnose {

struct ProtocolOptions {
  eval::EvalArgs eval;     // model, out, judge, data, generation, device, text, seed ...
  std::string target;      // --kv; diagnose may leave it empty (then rules::kScanScheme)
  std::string target_policy;  // --kv-policy FILE: the target as a policy file (its canonical spec is audited)
  std::string calib;       // --calib BENCH[:N], default rules::kCalibDefault
  std::string heldout;     // --heldout BENCH[:N], default rules::kHeldoutDefault
  int subspace_k = 0;      // 0 = rules::kSubspaceK
  size_t geometry_pairs = 16;
  double target_recovery = 0;  // 0 = rules::kTargetRecovery
  std::string phase_bits;  // --phase-bits: the target's family on the held-out prompts ("" = rules::kPhaseBits, "none")
  bool verify = false;     // audit: candidates, verification, choice, policy.json
  int capability = -1;     // audit: IFEval prompts of the capability check (-1 = rules::kCapabilityPrompts, 0 = off)
  int capability_tokens = 0;  // their generation limit (0 = eval::ifeval::kMaxNewTokens, the paper's 1024)
  bool force = false;      // diagnose and verify even when the target's flips are not significant
};

struct ProtocolResult {
  nlohmann::ordered_json report;            // report.json (SPEC.md §6)
  std::vector<nlohmann::json> samples;      // for report.html's table
  std::optional<nlohmann::json> policy;     // policy.json, when written
};

// Runs the protocol; writes <out>/report.json, <out>/policy.json (audit), <out>/samples.jsonl.
// `stage` is told each stage's name as it starts (for the command's progress lines).
ProtocolResult run_protocol(const ProtocolOptions& o, const std::function<void(const std::string&)>& stage = {});

}  // namespace kvaudit::diagnose
