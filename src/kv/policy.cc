#include "kv/policy.h"

namespace kvaudit::kv {

bool KvPolicy::keys_pre_rope(int) const { return false; }
std::unique_ptr<LayerCache> KvPolicy::make_cache(int, Role, CacheGeometry g) const { return make_plain_cache(g); }
std::string KvPolicy::name() const { return "fp16"; }

}  // namespace kvaudit::kv
