// `kvaudit screen` (SPEC.md §5 "Screen", §7): refusal-score shifts of each --kv scheme, and of each
// layer alone under it, from prefills only. The refusal openings come from the baseline's own
// refusals on the calibration prompts (the one generation this command does, resumable).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/pipeline.h"

namespace kvaudit::diagnose {

struct ScreenOptions {
  eval::EvalArgs eval;  // model, bench, out, generation (for the calibration baseline) ...
  std::string calib;    // --calib BENCH[:N], default rules::kCalibDefault
  bool per_layer = true;
};

// Writes <out>/screen.json and returns it:
// {"openings": [ids], "n_prompts", "schemes": [{"scheme", "mean_score_shift", "median_score_shift",
//  "fraction_dropped", "per_layer": [{"layer", "mean_score_shift"}] | null}],
//  "timing": {"total_s", "prefills", "prefills_resumed"}}.
// A shift is score(scheme) - score(16-bit); negative = the model moved away from refusing. Each
// score is appended to <out>/screen_scores.jsonl as its batch finishes; a rerun scores only the
// (prompt, policy) pairs it lacks (docs/AUDIT.md "kvaudit screen").
nlohmann::ordered_json run_screen(const ScreenOptions& o);

}  // namespace kvaudit::diagnose
