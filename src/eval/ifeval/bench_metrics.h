// IFEval as an eval benchmark (`--bench ifeval`, SPEC.md §4): the prompts as eval::Prompt, the
// scorer applied to generated responses, and the accuracies of a scheme with their change against
// the 16-bit baseline and a paired test.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "eval/benchmarks.h"
#include "eval/ifeval/scorer.h"
#include "eval/metrics.h"

namespace kvaudit::eval::ifeval {

inline constexpr const char* kBench = "ifeval";
// The paper generated IFEval responses with up to 1024 new tokens (the safety sets: 256).
inline constexpr int kMaxNewTokens = 1024;

// The items of <data_dir>/ifeval/input_data.jsonl, loaded once per process and data dir.
const std::vector<Item>& items_for(const std::string& data_dir);

// Every IFEval prompt as eval::Prompt: id "ifeval:<key>", bench "ifeval", in file order.
std::vector<Prompt> load_prompts(const std::string& data_dir);

// The item of an "ifeval:<key>" prompt id; logic_error if there is none.
const Item& item_of(const std::string& data_dir, const std::string& prompt_id);

// What samples.jsonl's `matched` holds for an IFEval sample: "ifeval strict K/N loose K/N".
std::string verdict_summary(const Verdict& v);

// Accuracies of `scheme` (and of `baseline`, the same prompts' 16-bit verdicts): deltas are
// scheme - baseline; flips = prompts the baseline follows (prompt-level strict) and the scheme does
// not, reverse flips the other way; McNemar exact on them, as the refusal flips.
IfevalMetrics ifeval_metrics(const std::vector<Verdict>& baseline, const std::vector<Verdict>& scheme);

}  // namespace kvaudit::eval::ifeval
