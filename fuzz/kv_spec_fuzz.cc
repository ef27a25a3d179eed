// libFuzzer target for the KV scheme-spec parser (SPEC.md §3): any input either parses or throws
// UsageError; a parsed spec's canonical name is a fixed point of parse(); its caches build (or
// refuse with UsageError) and stream without crashing.
// Build and run: scripts/fuzz.sh 120 kv_spec
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "kv/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit::kv;
  const std::string spec(reinterpret_cast<const char*>(data), size);
  KvPolicy p;
  try {
    p = KvPolicy::parse(spec);
  } catch (const kvaudit::UsageError&) {
    return 0;
  }
  const std::string name = p.name();
  const KvPolicy q = KvPolicy::parse(name);  // must not throw
  if (q.name() != name) std::abort();
  for (int layer : {0, 3})
    for (Role role : {Role::K, Role::V}) {
      if (!(p.scheme(layer, role) == q.scheme(layer, role))) std::abort();
      try {
        auto cache = p.make_cache(layer, role, {2, 32});
        std::vector<float> rows(3 * 64);  // [3, 64]
        for (size_t i = 0; i < rows.size(); ++i) rows[i] = float(int(i * 37 % 23) - 11) * 0.37f;
        cache->append(rows.data(), 2);
        cache->append(rows.data() + 128, 1);
        if (cache->size() != 3) std::abort();
      } catch (const kvaudit::UsageError&) {
      }
    }
  return 0;
}
