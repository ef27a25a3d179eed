// A resumable log of refusal scores (diagnose/screen.h prefill_scores): a header naming the model,
// the device and the refusal openings the scores are of, then one line per (prompt, policy) score,
// appended as its batch finishes. `kvaudit screen` and the audit's screen stages (diagnose,
// audit) keep one in their --out, so a rerun prefills only the pairs the log lacks.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "diagnose/screen.h"
#include "eval/jsonl_log.h"
#include "eval/samples.h"

namespace kvaudit::diagnose {

// A prompt's tokens as the log records them: a rerun whose template, --system or dataset changed a
// prompt's tokens must not reuse its scores.
std::string tokens_digest(const std::vector<int>& ids);

class ScoreLog {
 public:
  // Reads `path` (UsageError naming it when its header is another run's: another model, device or
  // openings) and appends to it; `run` names the command in that message.
  ScoreLog(const std::string& path, const nlohmann::json& header, const std::string& run);
  // Its checkpoints' on_score appends through this object: it stays where it was made.
  ScoreLog(const ScoreLog&) = delete;
  ScoreLog& operator=(const ScoreLog&) = delete;

  // What the log holds for these prompts (ids and token digests, index-aligned) and policies
  // (names; index 0 is the 16-bit model), as prefill_scores indexes them, and an on_score that
  // appends each new score. UsageError when a prompt id was scored with other tokens.
  ScoreCheckpoint checkpoint(const std::vector<std::string>& prompt_ids, const std::vector<std::string>& digests,
                             const std::vector<std::string>& policy_names);

 private:
  eval::JsonlLog log_;
  std::unique_ptr<eval::SamplesWriter> writer_;
};

}  // namespace kvaudit::diagnose
