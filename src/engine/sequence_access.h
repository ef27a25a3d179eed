// The backends' mutable view of a Sequence (engine.h keeps its members private so that only a
// backend's forward changes a sequence's history and caches). Internal to src/engine/.
#pragma once
#include <cstdint>

#include "core/error.h"
#include "engine/engine.h"

namespace kvaudit::engine {

// What every backend's forward requires of one batch entry (UsageError otherwise): a sequence, new
// tokens inside the vocabulary, and positions inside the model's context (max_position_embeddings /
// context_length, when the model states one): past it RoPE models run on positions they were never
// trained for and produce text without a word of warning, so this refuses, as vLLM does.
inline void check_input(const model::Model& m, const SeqInput& in) {
  const auto& c = m.config;
  if (in.seq == nullptr) usage_error("forward: a batch entry has no sequence");
  if (in.tokens.empty()) usage_error("forward: sequence {} has no new tokens", in.seq->id());
  for (int t : in.tokens)
    if (t < 0 || t >= c.n_vocab) usage_error("token id {} out of range [0, {}) for {}", t, c.n_vocab, m.path);
  const int64_t end = in.seq->position() + int64_t(in.tokens.size());
  if (c.max_position > 0 && end > c.max_position)
    usage_error("sequence {} would reach {} tokens, past {}'s context of {} (max_position_embeddings / context_length)",
                in.seq->id(), end, m.path, c.max_position);
}

class SequenceAccess {
 public:
  static std::vector<int>& tokens(Sequence& s) { return s.tokens_; }
  static kv::LayerCache& k(Sequence& s, int layer) { return *s.k_[size_t(layer)]; }
  static kv::LayerCache& v(Sequence& s, int layer) { return *s.v_[size_t(layer)]; }
  static std::vector<float>& k_rotated(Sequence& s, int layer) { return s.k_rotated_[size_t(layer)]; }
  static std::shared_ptr<BackendSeqState>& backend_state(Sequence& s) { return s.backend_state_; }
};

}  // namespace kvaudit::engine
