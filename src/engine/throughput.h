// Throughput measurement for `kvaudit bench` (SPEC.md §7) and docs/PERFORMANCE.md: prefill and
// decode tokens/s at a batch size, and the memory-bandwidth bound of decode (every weight matrix
// is read once per decode step, so tokens/s <= batch * bandwidth / weight bytes).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/engine.h"

namespace kvaudit::engine {

struct ThroughputResult {
  int batch = 0;
  int prompt_len = 0;
  int gen = 0;
  double prefill_s = 0;       // one forward over batch * prompt_len tokens
  double decode_s = 0;        // gen steps of batch tokens each
  double prefill_tok_s = 0;   // batch * prompt_len / prefill_s
  double decode_tok_s = 0;    // batch * gen / decode_s
  // batch * gen / (prefill_s + decode_s): what a `generate` call's wall time gives (transformers'
  // tok/s in tools/bench_transformers.py include its prefill)
  double generated_tok_s = 0;
  int64_t kv_bytes = 0;       // K and V stored by the batch at the end (Sequence::kv_bytes)
};

// Runs `batch` fresh sequences of `prompt_len` seeded random tokens: one batched prefill, then
// `gen` greedy decode steps. Sequence b takes policies[b % size] (several schemes sharing batches,
// as a sweep runs them). Deterministic inputs for a given seed.
ThroughputResult measure_throughput(Backend& backend, const std::vector<std::shared_ptr<const kv::KvPolicy>>& policies,
                                    int batch, int prompt_len, int gen, uint32_t seed = 1);

// Bytes of weights a decode step reads: every layer tensor, the final norm and the output matrix
// (the embedding table only when tied, as the output matrix; its row gathers are negligible).
int64_t decode_weight_bytes(const model::Model& m);

// Host bytes measure_throughput needs on the CPU beyond the weights, from the shapes (an upper
// estimate): every sequence's K and V as fp32 rows for prompt_len + gen positions, and the
// prefill's activations for batch x prompt_len tokens (residual, norm, q/k/v, attention output,
// gate/up).
int64_t cpu_run_bytes(const model::ModelConfig& c, int64_t batch, int64_t prompt_len, int64_t gen);

// Bytes of every weight as held (matrices as stored, so the file's bytes for a mapped model).
int64_t stored_weight_bytes(const model::Model& m);

// The process's peak resident set (getrusage ru_maxrss), bytes.
int64_t peak_rss_bytes();

// Monotonic seconds.
double now_seconds();

// memcpy bandwidth in bytes/s counted as STREAM "copy" does (bytes read + bytes written), over a
// buffer far larger than the last-level cache, split across the OpenMP threads; the median of
// `repeats` runs.
double measure_memcpy_bandwidth(int64_t bytes = int64_t(256) << 20, int repeats = 5);

}  // namespace kvaudit::engine
