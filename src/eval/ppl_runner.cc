#include "eval/ppl_runner.h"

#include <algorithm>
#include <span>
#include <stdexcept>

namespace kvaudit::eval {

std::vector<PplResult> run_perplexity(engine::Backend& backend, const std::vector<int>& tokens,
                                      const std::vector<SchemeRun>& schemes, const PplOptions& opt,
                                      Progress* progress) {
  if (schemes.empty()) throw std::logic_error("run_perplexity: no schemes");
  auto windows = ppl_windows(tokens.size(), opt.window, opt.stride);
  if (opt.max_windows && windows.size() > opt.max_windows) windows.resize(opt.max_windows);
  const auto& config = backend.model().config;
  std::vector<double> nll(schemes.size(), 0.0);
  std::vector<MeanAccumulator> kl(schemes.size());
  size_t n_scored = 0, step = 0;
  for (const PplWindow& w : windows) {
    const size_t score_from = std::max(w.score_from, w.begin + opt.score_from + 1);
    if (score_from >= w.end) continue;  // nothing left to score in this window
    const std::span<const int> input(tokens.data() + w.begin, w.end - w.begin);
    const size_t n_targets = w.end - score_from;
    std::vector<float> base_rows;  // [n_targets, n_vocab]: the baseline's rows, for KL
    for (size_t s = 0; s < schemes.size(); ++s) {
      engine::Sequence seq(config, schemes[s].policy);
      const engine::SeqInput in{&seq, input, true};
      const engine::Logits logits = backend.forward({&in, 1});  // [w.end - w.begin, n_vocab]
      for (size_t t = score_from; t < w.end; ++t) {
        const std::span<const float> row(logits.row(int64_t(t - 1 - w.begin)), size_t(logits.n_vocab));
        nll[s] += token_nll(row, size_t(tokens[t]));
        if (s == 0) {
          base_rows.insert(base_rows.end(), row.begin(), row.end());
        } else {
          const size_t v = size_t(logits.n_vocab);
          const std::span<const float> base(base_rows.data() + (t - score_from) * v, v);
          kl[s].add(token_kl(base, row));
        }
      }
      if (progress) progress->update(++step);
    }
    n_scored += n_targets;
  }
  std::vector<PplResult> out(schemes.size());
  for (size_t s = 0; s < schemes.size(); ++s) {
    out[s].ppl = perplexity(nll[s], n_scored);
    out[s].n_scored = n_scored;
    out[s].kl = s == 0 ? (n_scored ? 0.0 : kNaN) : kl[s].mean();
  }
  for (auto& r : out) r.ppl_ratio = r.ppl / out[0].ppl;  // NaN propagates when undefined
  return out;
}

}  // namespace kvaudit::eval
