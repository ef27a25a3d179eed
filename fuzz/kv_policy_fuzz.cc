// libFuzzer target for KV policy files (`--kv-policy FILE`, SPEC.md §4): {"spec"} or {"layers":
// [{"k", "v"} | channel subsets]}, "storage", "compat". Any input either loads or throws
// UsageError naming the file; a loaded policy validated for its model round-trips through
// to_json / from_json to the same schemes, and its caches build (or refuse with UsageError).
// Build and run: scripts/fuzz.sh 120 kv_policy
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_file.h"
#include "kv/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit;
  using namespace kvaudit::kv;
  const std::string path = fuzz::write_input("policy.json", data, size);
  for (int n_layers : {1, 2, 4}) {
    KvPolicy p;
    try {
      p = KvPolicy::load(path, n_layers);
    } catch (const UsageError& e) {
      if (std::string(e.what()).find(path) == std::string::npos) std::abort();  // every error names the file
      continue;
    }
    const KvPolicy q = KvPolicy::from_json(p.to_json(n_layers));  // must not throw
    for (int l = 0; l < n_layers; ++l)
      for (Role role : {Role::K, Role::V}) {
        if (!(p.scheme(l, role) == q.scheme(l, role))) std::abort();
        try {
          auto cache = p.make_cache(l, role, {2, 32});
          std::vector<float> rows(2 * 64, 0.25f);  // [2, 64]
          rows[5] = -3.f;
          cache->append(rows.data(), 2);
          if (cache->size() != 2) std::abort();
        } catch (const UsageError&) {  // geometry the scheme refuses, or no calibration
        }
      }
  }
  return 0;
}
