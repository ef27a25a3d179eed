// Quantize+dequantize throughput of every KV scheme (SPEC.md §3; issue "Must show" 5), in GB/s of
// fp32 input, next to memcpy of the same buffer measured in this program. One iteration appends
// [2048 tokens, 8 heads x 128] (8 MiB, beyond L2) as one prefill to a fresh simulated cache: the
// path the engine takes. Run: build-kv/bench/bench_kv_quant [--benchmark_filter=int4]
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "kv/policy.h"

namespace {

using kvaudit::kv::CacheGeometry;
using kvaudit::kv::KvPolicy;
using kvaudit::kv::Role;

constexpr CacheGeometry kGeom{8, 128};  // Llama-3.1-8B KV geometry
constexpr int64_t kTokens = 2048;

const std::vector<float>& input() {
  static const std::vector<float> x = [] {
    std::vector<float> v(size_t(kTokens) * kGeom.width());  // [tokens, width]
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& f : v) f = nd(rng);
    return v;
  }();
  return x;
}

void BM_memcpy(benchmark::State& state) {
  const auto& x = input();
  std::vector<float> y(x.size());
  for (auto _ : state) {
    std::memcpy(y.data(), x.data(), x.size() * sizeof(float));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(x.size() * sizeof(float)));
}
BENCHMARK(BM_memcpy)->Unit(benchmark::kMillisecond);

// memcpy bandwidth in the usual sense: a 256 MiB copy, far beyond the 32 MiB L3, so it runs at DRAM
// speed. BM_memcpy above copies the schemes' own 8 MiB buffer, which stays in L3 between
// iterations: the stricter yardstick. PERFORMANCE.md reports the schemes against both.
void BM_memcpy_dram(benchmark::State& state) {
  constexpr size_t kFloats = size_t(64) << 20;  // 256 MiB
  std::vector<float> x(kFloats, 1.0f), y(kFloats, 0.0f);
  for (auto _ : state) {
    std::memcpy(y.data(), x.data(), kFloats * sizeof(float));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kFloats * sizeof(float)));
}
BENCHMARK(BM_memcpy_dram)->Unit(benchmark::kMillisecond);

void BM_scheme(benchmark::State& state, const char* spec, Role role) {
  const auto& x = input();
  const KvPolicy policy = KvPolicy::parse(spec);
  for (auto _ : state) {
    auto cache = policy.make_cache(0, role, kGeom);
    cache->append(x.data(), kTokens);
    benchmark::DoNotOptimize(cache->rows());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(x.size() * sizeof(float)));
}

#define KV_BENCH(name, spec, role) BENCHMARK_CAPTURE(BM_scheme, name, spec, role)->Unit(benchmark::kMillisecond)
KV_BENCH(fp16, "fp16", Role::K);
KV_BENCH(bf16, "bf16", Role::K);
KV_BENCH(int8_token, "int8:token:asym", Role::K);
KV_BENCH(int4_token, "int4:token:asym", Role::K);
KV_BENCH(int4_token_sym, "int4:token:sym", Role::K);
KV_BENCH(int4_head, "int4:head:asym", Role::K);
KV_BENCH(int4_group32, "int4:group:g32", Role::K);
KV_BENCH(int3_tensor, "int3:tensor:sym", Role::K);
KV_BENCH(int2_channel, "int2:channel:g32", Role::K);
KV_BENCH(kivi2_k, "kivi2", Role::K);
KV_BENCH(kivi2_v, "kivi2", Role::V);
KV_BENCH(fp8e4m3, "fp8e4m3", Role::K);
KV_BENCH(fp8e5m2, "fp8e5m2", Role::K);
KV_BENCH(fp8e4m3_dynamic, "fp8e4m3:scale=dynamic", Role::K);
KV_BENCH(fp8e5m2_dynamic, "fp8e5m2:scale=dynamic", Role::K);
KV_BENCH(q8_0, "q8_0", Role::K);
KV_BENCH(q4_0, "q4_0", Role::K);
KV_BENCH(q4_1, "q4_1", Role::K);
KV_BENCH(q5_0, "q5_0", Role::K);
KV_BENCH(q5_1, "q5_1", Role::K);
KV_BENCH(iq4_nl, "iq4_nl", Role::K);
KV_BENCH(int4_token_had, "int4:token+had", Role::K);

}  // namespace

BENCHMARK_MAIN();
