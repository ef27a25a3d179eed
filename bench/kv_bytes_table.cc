// Prints the bytes/token/layer table of docs/KV_SCHEMES.md from the formula in kv/memory.h (the
// formula itself is checked against hand-worked numbers in tests/kv/memory_test.cc).
// Run: build-kv/bench/bench_kv_bytes_table > table.md
#include <cstdio>

#include "kv/memory.h"
#include "kv/policy.h"

int main() {
  using namespace kvaudit::kv;
  constexpr int64_t kContext = 4096;
  struct Geo {
    const char* name;
    CacheGeometry g;
  };
  const Geo geos[] = {{"SmolLM2-135M (3 x 64)", {3, 64}}, {"Llama-3.1-8B (8 x 128)", {8, 128}}};
  const char* specs[] = {"fp16", "bf16", "int8:token:asym", "int8:token:sym", "int4:token:asym", "int4:head:asym",
                         "int4:group:g32", "int4:group:g64", "int4:group:g128", "int3:token:asym", "int3:tensor:sym",
                         "int2:token:asym", "int2:group:g32", "int2:channel:g32", "int4:channel:g32", "int1:token:asym",
                         "kivi2", "kivi4", "kivi2:g64:r128", "fp8e4m3", "fp8e5m2", "fp8e4m3:scale=dynamic", "q8_0",
                         "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl", "nuq4", "nuq3:sparse=0.01", "nuq2:sparse=0.01",
                         "int4:token+protect=5%", "int3:tensor:sym@pre+protect=5%", "int2:group:g32+protect=8ch"};
  std::printf("| scheme |");
  for (const auto& g : geos) std::printf(" %s K | V | K+V vs fp16 |", g.name);
  std::printf("\n|---|");
  for (size_t i = 0; i < std::size(geos); ++i) std::printf("---:|---:|---:|");
  std::printf("\n");
  for (const char* spec : specs) {
    const KvPolicy p = KvPolicy::parse(spec);
    std::printf("| `%s` |", spec);
    for (const auto& g : geos) {
      const double k = bytes_per_token(p.scheme(0, Role::K), Role::K, g.g, kContext);
      const double v = bytes_per_token(p.scheme(0, Role::V), Role::V, g.g, kContext);
      std::printf(" %.2f | %.2f | %.3f |", k, v, (k + v) / (4.0 * g.g.width()));
    }
    std::printf("\n");
  }
}
