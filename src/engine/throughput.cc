#include "engine/throughput.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"

namespace kvaudit::engine {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t bytes_of(const std::vector<float>& v) { return int64_t(v.size() * sizeof(float)); }
int64_t bytes_of(const model::WeightMatrix& w) { return int64_t(w.bytes()); }  // as stored

}  // namespace

int64_t cpu_run_bytes(const model::ModelConfig& c, int64_t batch, int64_t prompt_len, int64_t gen) {
  const int64_t f = int64_t(sizeof(float));
  const int64_t kv = batch * (prompt_len + gen) * int64_t(c.n_layers) * 2 * c.kv_dim() * f;
  const int64_t per_token = int64_t(3) * c.d_model + c.q_dim() + 2 * c.kv_dim() + c.q_dim() + 2 * int64_t(c.d_ff);
  return kv + batch * prompt_len * per_token * f;
}

ThroughputResult measure_throughput(Backend& backend, const std::vector<std::shared_ptr<const kv::KvPolicy>>& policies,
                                    int batch, int prompt_len, int gen, uint32_t seed) {
  if (batch < 1 || prompt_len < 1 || gen < 0) usage_error("bench: batch and prompt length must be >= 1, gen >= 0");
  if (policies.empty()) usage_error("bench: no KV policy");
  const model::ModelConfig& c = backend.model().config;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> tok(0, c.n_vocab - 1);
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<std::vector<int>> prompts(static_cast<size_t>(batch));  // [batch][prompt_len]
  std::vector<SeqInput> inputs;
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < prompt_len; ++t) prompts[size_t(b)].push_back(tok(rng));
    seqs.push_back(std::make_unique<Sequence>(c, policies[size_t(b) % policies.size()], b));
    seqs.back()->expect_tokens(int64_t(prompt_len) + gen);  // as generate() tells it
    inputs.push_back({seqs.back().get(), prompts[size_t(b)], false});
  }
  ThroughputResult r{batch, prompt_len, gen};
  double t0 = now_s();
  std::vector<int> next = backend.forward_greedy(inputs);  // [batch] greedy token of each sequence
  r.prefill_s = now_s() - t0;
  t0 = now_s();
  for (int s = 0; s < gen; ++s) {
    for (int b = 0; b < batch; ++b) inputs[size_t(b)].tokens = {&next[size_t(b)], 1};
    next = backend.forward_greedy(inputs);  // replaces next only after the call has read it
  }
  r.decode_s = now_s() - t0;
  for (const auto& seq : seqs) r.kv_bytes += int64_t(seq->kv_bytes());
  r.prefill_tok_s = double(batch) * prompt_len / r.prefill_s;
  r.decode_tok_s = gen > 0 ? double(batch) * gen / r.decode_s : 0.0;
  r.generated_tok_s = gen > 0 ? double(batch) * gen / (r.prefill_s + r.decode_s) : 0.0;
  return r;
}

int64_t decode_weight_bytes(const model::Model& m) {
  const model::Weights& w = m.weights;
  int64_t b = bytes_of(w.final_norm) + bytes_of(w.output_matrix());
  for (const model::LayerWeights& l : w.layers) {
    for (const auto* v : {&l.attn_norm, &l.bq, &l.bk, &l.bv, &l.q_norm, &l.k_norm, &l.post_attn_norm, &l.ffn_norm,
                          &l.post_ffn_norm})
      b += bytes_of(*v);
    for (const auto* v : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) b += bytes_of(*v);
  }
  return b;
}

int64_t stored_weight_bytes(const model::Model& m) {
  const model::Weights& w = m.weights;
  int64_t b = decode_weight_bytes(m);
  if (!w.lm_head.empty()) b += bytes_of(w.embed);  // tied: already counted as the output matrix
  return b;
}

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;  // Linux: kilobytes
}

double now_seconds() { return now_s(); }

double measure_memcpy_bandwidth(int64_t bytes, int repeats) {
  std::vector<char> src(size_t(bytes), 1), dst(size_t(bytes), 0);  // touched: pages are mapped
  std::vector<double> rates;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    const double t0 = now_s();
#pragma omp parallel
    {
      const int64_t n = omp_get_num_threads(), i = omp_get_thread_num();
      const int64_t lo = bytes * i / n, hi = bytes * (i + 1) / n;
      std::memcpy(dst.data() + lo, src.data() + lo, size_t(hi - lo));
    }
    rates.push_back(2.0 * double(bytes) / (now_s() - t0));
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace kvaudit::engine
