// Which KV scheme each (layer, role) of a sequence uses. The engine asks a policy for the caches of
// a new sequence; every sequence in a batch may carry its own policy (SPEC.md §4).
#pragma once
#include <memory>
#include <string>

#include "kv/cache.h"

namespace kvaudit::kv {

class KvPolicy {
 public:
  // The 16-bit baseline: every layer and role stored unchanged.
  KvPolicy() = default;

  // True when this layer's keys are quantized before RoPE (`@pre`): the engine then appends
  // un-rotated keys and rotates the rows the cache returns.
  bool keys_pre_rope(int layer) const;
  std::unique_ptr<LayerCache> make_cache(int layer, Role role, CacheGeometry g) const;
  // Canonical spec string ("fp16" for the baseline).
  std::string name() const;
};

}  // namespace kvaudit::kv
