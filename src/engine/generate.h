// Greedy generation with continuous batching (SPEC.md §4): up to batch_size sequences run
// together; a sequence leaves the batch when it emits a stop id or reaches max_new_tokens and
// the next queued request takes its place (its prompt prefilled in the same forward call as the
// others' decode steps). Because the backend is batch-invariant, each request's output equals
// what it would produce alone. A caller may also end a sequence early (`decided`, the eval's
// verdict-aware early stop): that only removes it from later batches, so every other sequence's
// tokens are unchanged and its own tokens are a prefix of its full-length ones.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "engine/engine.h"

namespace kvaudit::engine {

struct GenerateRequest {
  std::vector<int> prompt;                      // token ids, non-empty
  std::shared_ptr<const kv::KvPolicy> policy;   // null: the 16-bit baseline
};

struct GenerateOptions {
  int max_new_tokens = 256;  // SPEC.md §4 default, as the paper
  int batch_size = 0;  // 0: the backend's auto_batch_size for the longest request
  std::vector<int> stop_ids;  // model EOS + tokenizer end-of-turn ids
  const Hooks* hooks = nullptr;  // sequence ids passed to hooks are request indices
  // Called for each generated token as soon as it is chosen (stop ids are not reported).
  std::function<void(size_t request, int token)> on_token;
  // Called after on_token for each generated token that does not reach max_new_tokens; true ends
  // the request there (FinishReason::kDecided), its cache freed before the next forward call.
  // Null: every request runs to a stop id or max_new_tokens.
  std::function<bool(size_t request, int token)> decided;
};

// kDecided: the caller's `decided` ended the request before a stop id or max_new_tokens.
enum class FinishReason { kStop, kLength, kDecided };

struct GenerateResult {
  std::vector<int> tokens;  // generated ids, the stop id excluded
  FinishReason finish = FinishReason::kLength;
  int stop_id = -1;         // the stop id emitted (kStop), else -1
};

// Runs every request to completion; results are in request order. Throws UsageError for an
// empty prompt or a token id outside the vocabulary.
std::vector<GenerateResult> generate(Backend& backend, std::span<const GenerateRequest> requests,
                                     const GenerateOptions& opt);

}  // namespace kvaudit::engine
