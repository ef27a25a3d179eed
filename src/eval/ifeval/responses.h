// `kvaudit score --bench ifeval` (SPEC.md §7): responses made elsewhere, one JSON object a line,
// {"key": K, "response": R} or {"prompt": P, "response": R} (lm-evaluation-harness style), matched
// to the IFEval prompts and scored.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/ifeval/scorer.h"

namespace kvaudit::eval::ifeval {

struct ScoredResponse {
  const Item* item = nullptr;
  std::string response;
  Verdict verdict;
};

// Reads and matches every non-blank line of `path` to `items`, in file order (not scored yet).
// UsageError naming path and line for malformed JSON, a line that is not an object, no "key" and
// no "prompt", a non-string response, a key or prompt that is not an IFEval prompt, or a prompt
// answered twice.
std::vector<ScoredResponse> read_responses(const std::string& path, const std::vector<Item>& items);

// Scores each response (in parallel).
void score_all(std::vector<ScoredResponse>& rs);

// One samples.jsonl line: key, prompt, response, instruction_id_list and, strict and loose,
// follow_all_instructions and follow_instruction_list (in instruction_id_list order).
nlohmann::json sample_json(const ScoredResponse& r);

// {n, n_instructions, ifeval_prompt_strict, ifeval_prompt_loose, ifeval_inst_strict,
// ifeval_inst_loose} (null where undefined).
nlohmann::json accuracy_json(const Accuracy& a);

}  // namespace kvaudit::eval::ifeval
