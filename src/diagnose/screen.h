// The screen (SPEC.md §5 "Screen", beyond the paper): the refusal score of a prompt, log P(refusal
// opening) - log P(other) at the first generated position, from one prefill per prompt and scheme;
// its shift under a scheme predicts generation flips, and how well is measured (AUROC, Spearman).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "eval/progress.h"
#include "kv/policy.h"
#include "text/tokenizer.h"

namespace kvaudit::diagnose {

// The distinct first token ids of the given refusal responses (re-encoded from their text), sorted.
std::vector<int> refusal_openings(const text::Tokenizer& tok, const std::vector<std::string>& refusals);

// log sum_{t in openings} p_t - log sum_{t not in openings} p_t from logits [n_vocab]; +inf / -inf
// when one side holds all the mass. `openings`: distinct ids in [0, n_vocab).
double refusal_score(const float* logits, int64_t n_vocab, const std::vector<int>& openings);

// Scores an earlier run computed, and where each new one goes once its batch is done (`screen --out`
// resumes through it).
struct ScoreCheckpoint {
  std::map<std::pair<size_t, size_t>, double> done;  // (policy, prompt) -> score
  std::function<void(size_t policy, size_t prompt, double score)> on_score;
};

// Refusal scores [policy][prompt]: each prompt prefilled once under each policy (null = 16-bit),
// batch_size sequences per forward call, prompt-major (the backend is batch-invariant, so neither the
// batching nor what a checkpoint skips changes a score). Progress counts (policy, prompt) pairs.
std::vector<std::vector<double>> prefill_scores(engine::Backend& backend, const std::vector<std::vector<int>>& prompts,
                                                const std::vector<std::shared_ptr<const kv::KvPolicy>>& policies,
                                                const std::vector<int>& openings, int batch_size,
                                                eval::Progress* progress = nullptr,
                                                const ScoreCheckpoint* checkpoint = nullptr);

// Area under the ROC curve of `score` predicting `label` (Mann-Whitney; ties count 1/2). NaN when a
// class is empty.
double auroc(std::span<const double> score, std::span<const bool> label);
// Spearman rank correlation (average ranks for ties); NaN for n < 2 or a constant input.
double spearman(std::span<const double> x, std::span<const double> y);

}  // namespace kvaudit::diagnose
