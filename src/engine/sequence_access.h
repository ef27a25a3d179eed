// The backends' mutable view of a Sequence (engine.h keeps its members private so that only a
// backend's forward changes a sequence's history and caches). Internal to src/engine/.
#pragma once
#include "engine/engine.h"

namespace kvaudit::engine {

class SequenceAccess {
 public:
  static std::vector<int>& tokens(Sequence& s) { return s.tokens_; }
  static kv::LayerCache& k(Sequence& s, int layer) { return *s.k_[size_t(layer)]; }
  static kv::LayerCache& v(Sequence& s, int layer) { return *s.v_[size_t(layer)]; }
  static std::vector<float>& k_rotated(Sequence& s, int layer) { return s.k_rotated_[size_t(layer)]; }
  static std::shared_ptr<BackendSeqState>& backend_state(Sequence& s) { return s.backend_state_; }
};

}  // namespace kvaudit::engine
