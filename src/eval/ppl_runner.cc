#include "eval/ppl_runner.h"

#include <algorithm>
#include <span>
#include <stdexcept>

#include "core/error.h"

namespace kvaudit::eval {

namespace {

// The sums of one window for every scheme: one prefill of a fresh sequence per scheme.
PplWindowSums score_window(engine::Backend& backend, const std::vector<int>& tokens,
                           const std::vector<SchemeRun>& schemes, const PplWindow& w, size_t score_from,
                           Progress* progress, size_t& step) {
  const auto& config = backend.model().config;
  const std::span<const int> input(tokens.data() + w.begin, w.end - w.begin);
  PplWindowSums sums;
  sums.n_targets = w.end - score_from;
  sums.nll.assign(schemes.size(), 0.0);
  sums.kl.assign(schemes.size(), 0.0);
  std::vector<float> base_rows;  // [n_targets, n_vocab]: the baseline's rows, for KL
  for (size_t s = 0; s < schemes.size(); ++s) {
    engine::Sequence seq(config, schemes[s].policy);
    const engine::SeqInput in{&seq, input, true};
    const engine::Logits logits = backend.forward({&in, 1});  // [w.end - w.begin, n_vocab]
    for (size_t t = score_from; t < w.end; ++t) {
      const std::span<const float> row(logits.row(int64_t(t - 1 - w.begin)), size_t(logits.n_vocab));
      sums.nll[s] += token_nll(row, size_t(tokens[t]));
      if (s == 0) {
        base_rows.insert(base_rows.end(), row.begin(), row.end());
      } else {
        const size_t v = size_t(logits.n_vocab);
        const std::span<const float> base(base_rows.data() + (t - score_from) * v, v);
        sums.kl[s] += token_kl(base, row);
      }
    }
    if (progress) progress->update(++step);
  }
  return sums;
}

}  // namespace

size_t ppl_gap_per_window(const PplOptions& opt) {
  return opt.score_from + opt.stride + 1 > opt.window ? opt.score_from + opt.stride + 1 - opt.window : 0;
}

std::vector<PplResult> run_perplexity(engine::Backend& backend, const std::vector<int>& tokens,
                                      const std::vector<SchemeRun>& schemes, const PplOptions& opt,
                                      Progress* progress, const PplCheckpoint* checkpoint) {
  if (schemes.empty()) throw std::logic_error("run_perplexity: no schemes");
  auto windows = ppl_windows(tokens.size(), opt.window, opt.stride);
  if (opt.max_windows && windows.size() > opt.max_windows) windows.resize(opt.max_windows);
  std::vector<double> nll(schemes.size(), 0.0), kl(schemes.size(), 0.0);
  size_t n_scored = 0, step = 0;
  // Resumed windows count as done from the first progress line (they take no time).
  if (checkpoint && progress) {
    for (size_t i = 0; i < windows.size(); ++i) step += checkpoint->done.count(i) ? schemes.size() : 0;
    progress->resumed(step);
    progress->update(step);
  }
  for (size_t i = 0; i < windows.size(); ++i) {
    const PplWindow& w = windows[i];
    const size_t score_from = std::max(w.score_from, w.begin + opt.score_from + 1);
    if (score_from >= w.end) continue;  // nothing left to score in this window
    const PplWindowSums* resumed = nullptr;
    if (checkpoint)
      if (const auto it = checkpoint->done.find(i); it != checkpoint->done.end()) resumed = &it->second;
    PplWindowSums sums;
    if (resumed) {
      sums = *resumed;
      if (sums.n_targets != w.end - score_from || sums.nll.size() != schemes.size() || sums.kl.size() != schemes.size())
        usage_error("resumed perplexity window {} has {} targets and {} schemes; this run scores {} targets of {} "
                    "schemes there (give another --out)", i, sums.n_targets, sums.nll.size(), w.end - score_from,
                    schemes.size());
    } else {
      sums = score_window(backend, tokens, schemes, w, score_from, progress, step);
      sums.window = i;
      if (checkpoint && checkpoint->on_window) checkpoint->on_window(sums);
    }
    for (size_t s = 0; s < schemes.size(); ++s) {
      nll[s] += sums.nll[s];
      kl[s] += sums.kl[s];
    }
    n_scored += sums.n_targets;
  }
  std::vector<PplResult> out(schemes.size());
  for (size_t s = 0; s < schemes.size(); ++s) {
    out[s].ppl = perplexity(nll[s], n_scored);
    out[s].n_scored = n_scored;
    out[s].kl = n_scored ? kl[s] / double(n_scored) : kNaN;  // 0 for the baseline
  }
  for (auto& r : out) r.ppl_ratio = r.ppl / out[0].ppl;  // NaN propagates when undefined
  return out;
}

}  // namespace kvaudit::eval
