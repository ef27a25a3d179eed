// The shipped CPU matmul (engine/cpu/matmul_cpu.cc) on SmolLM2-135M shapes, per token count n:
// n = 1 is decode (memory-bound: weight GB/s is the figure of merit), n = 32 batched decode and
// n = 128 prefill (compute-bound: GFLOP/s). Caches are flushed before each repeat so every
// iteration streams the weights from DRAM, as a decode step does.
//   ninja -C build-engine bench_engine_matmul && build-engine/bench/bench_engine_matmul
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "engine/ops.h"

namespace {

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Evicts the weights from the caches (64 MB > 32 MB L3).
void flush_caches() {
  static std::vector<char> junk(size_t(64) << 20);
  for (size_t i = 0; i < junk.size(); i += 64) junk[i] = char(junk[i] + 1);
  benchmark::DoNotOptimize(junk.data());
}

// args: n tokens, m output features, k input features
void BM_matmul(benchmark::State& state) {
  const int64_t n = state.range(0), m = state.range(1), k = state.range(2);
  const auto x = random_vec(size_t(n * k), 1);
  const auto w = random_vec(size_t(m * k), 2);
  std::vector<float> y(size_t(n * m));
  for (auto _ : state) {
    state.PauseTiming();
    flush_caches();
    state.ResumeTiming();
    kvaudit::engine::cpu::matmul(x.data(), n, k, w.data(), m, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] =
      benchmark::Counter(double(m * k * 4) * double(state.iterations()), benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(n * m * k) * double(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// SmolLM2-135M: d_model 576, d_ff 1536, vocab 49152.
BENCHMARK(BM_matmul)
    ->ArgNames({"n", "m", "k"})
    ->Args({1, 1536, 576})
    ->Args({32, 1536, 576})
    ->Args({128, 1536, 576})
    ->Args({1, 576, 1536})
    ->Args({32, 576, 1536})
    ->Args({1, 49152, 576})
    ->Args({32, 49152, 576})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
