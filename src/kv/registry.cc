#include "kv/registry.h"

#include "core/error.h"
#include "kv/policy.h"

namespace kvaudit::kv {

SchemeSpec effective_scheme(const SchemeSpec& s, Role role) {
  if (s.kind != SchemeKind::kKivi) return s;
  SchemeSpec e = s;
  e.kind = SchemeKind::kInt;
  e.sym = false;
  e.gran = role == Role::K ? Gran::kChannel : Gran::kGroup;
  return e;
}

std::unique_ptr<LayerCache> make_scheme_cache(const SchemeSpec& s, Role role, CacheGeometry g, const CacheOptions& o) {
  if (s.kind == SchemeKind::kFp16) return make_plain_cache(g);
  runtime_error("KV scheme '{}' is not implemented yet", to_string(s));
}

}  // namespace kvaudit::kv
