#include "engine/generate.h"

#include <algorithm>

#include "core/error.h"

namespace kvaudit::engine {
namespace {

struct Active {
  size_t request;
  std::unique_ptr<Sequence> seq;
  std::vector<int> pending;  // tokens to feed next: the prompt, then the last generated token
};

}  // namespace

std::vector<GenerateResult> generate(Backend& backend, std::span<const GenerateRequest> requests,
                                     const GenerateOptions& opt) {
  if (opt.batch_size < 0) usage_error("--batch-size must be >= 1 (got {})", opt.batch_size);
  std::vector<GenerateResult> results(requests.size());
  if (opt.max_new_tokens <= 0) return results;
  size_t longest = 0;
  // The model's context (0: not stated): a prompt must fit in it; a generation stops at its end.
  const int64_t context = backend.model().config.max_position;
  for (size_t r = 0; r < requests.size(); ++r) {
    if (requests[r].prompt.empty()) usage_error("prompt {} is empty after tokenization", r);
    if (context > 0 && int64_t(requests[r].prompt.size()) > context)
      usage_error("prompt {} has {} tokens, past {}'s context of {}", r, requests[r].prompt.size(),
                  backend.model().path, context);
    longest = std::max(longest, requests[r].prompt.size());
  }
  const int batch_size =
      opt.batch_size > 0 ? opt.batch_size : backend.auto_batch_size(int64_t(longest) + opt.max_new_tokens);

  const auto is_stop = [&](int t) { return std::find(opt.stop_ids.begin(), opt.stop_ids.end(), t) != opt.stop_ids.end(); };
  std::vector<Active> active;
  size_t next = 0;
  while (next < requests.size() || !active.empty()) {
    // Refill the batch from the queue.
    while (active.size() < size_t(batch_size) && next < requests.size()) {
      const GenerateRequest& req = requests[next];
      auto seq = std::make_unique<Sequence>(backend.model().config, req.policy, int64_t(next));
      seq->expect_tokens(int64_t(req.prompt.size()) + opt.max_new_tokens);
      active.push_back({next, std::move(seq), req.prompt});
      ++next;
    }
    std::vector<SeqInput> batch;  // [active.size()]
    for (Active& a : active) batch.push_back({a.seq.get(), a.pending, false});
    const std::vector<int> next_tokens = backend.forward_greedy(batch, opt.hooks);

    for (size_t i = 0; i < active.size(); ++i) {
      GenerateResult& res = results[active[i].request];
      const int tok = next_tokens[i];
      if (is_stop(tok)) {
        res.finish = FinishReason::kStop;
        res.stop_id = tok;
        active[i].pending.clear();
        continue;
      }
      res.tokens.push_back(tok);
      if (opt.on_token) opt.on_token(active[i].request, tok);
      const bool context_full =
          context > 0 && int64_t(requests[active[i].request].prompt.size() + res.tokens.size()) > context;
      if (int(res.tokens.size()) >= opt.max_new_tokens || context_full) {  // the next token has no position
        res.finish = FinishReason::kLength;
        active[i].pending.clear();
      } else if (opt.decided && opt.decided(active[i].request, tok)) {
        res.finish = FinishReason::kDecided;
        active[i].pending.clear();
      } else {
        active[i].pending.assign(1, tok);
      }
    }
    // Finished sequences leave the batch (their caches are freed here).
    std::erase_if(active, [](const Active& a) { return a.pending.empty(); });
  }
  return results;
}

}  // namespace kvaudit::engine
