// A tiny model of any supported architecture with seeded random weights, built in memory so the
// engine tests need no files. Shapes are small enough that a forward pass takes microseconds.
#pragma once
#include <random>
#include <string>

#include "model/model.h"

namespace kvaudit::engine::testing {

inline std::vector<float> random_weights(size_t n, float scale, std::mt19937& rng, float offset = 0.0f) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = offset + u(rng);
  return v;
}

// widen: d_model, head_dim and d_ff times this (8: products wide enough for the CUDA streaming
// kernels, k a multiple of 256).
inline model::Model make_tiny_model(const std::string& arch, uint32_t seed = 1, int widen = 1) {
  model::Model m;
  m.arch = model::arch_spec(arch);
  model::ModelConfig& c = m.config;
  c.arch = arch;
  c.n_layers = 3;
  c.d_model = 32 * widen;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8 * widen;
  c.d_ff = 48 * widen;
  c.n_vocab = 101;
  c.max_position = 512;
  c.act = m.arch.default_act;
  c.layer_sliding.assign(size_t(c.n_layers), false);
  if (m.arch.softcaps) {  // gemma2-like: caps, scalar, sliding window on even layers
    c.attn_softcap = 5.0f;
    c.final_softcap = 3.0f;
    c.query_pre_attn_scalar = 16.0f;
    c.sliding_window = 6;
    for (int l = 0; l < c.n_layers; l += 2) c.layer_sliding[size_t(l)] = true;
  }
  if (arch == "phi3") c.partial_rotary_factor = 0.5f;  // exercise partial rotary
  c.tie_embeddings = (arch == "llama" || arch == "gemma2");
  m.path = "tiny-" + arch;

  std::mt19937 rng(seed);
  const size_t d = size_t(c.d_model), q = size_t(c.q_dim()), kv = size_t(c.kv_dim()), ff = size_t(c.d_ff);
  const float norm_off = m.arch.norm == model::NormKind::kRms ? 1.0f : 0.0f;
  auto lin = [&](size_t out, size_t in) {
    return model::WeightMatrix::f32(random_weights(out * in, 1.0f / std::sqrt(float(in)), rng), int64_t(out),
                                    int64_t(in));
  };
  auto nrm = [&](size_t n) { return random_weights(n, 0.1f, rng, norm_off); };
  model::Weights& w = m.weights;
  w.embed = model::WeightMatrix::f32(random_weights(size_t(c.n_vocab) * d, 1.0f, rng), c.n_vocab, int64_t(d));
  w.final_norm = nrm(d);
  if (!c.tie_embeddings) w.lm_head = lin(size_t(c.n_vocab), d);
  for (int l = 0; l < c.n_layers; ++l) {
    model::LayerWeights lw;
    if (m.arch.pre_attn_norm) lw.attn_norm = nrm(d);
    lw.wq = lin(q, d);
    lw.wk = lin(kv, d);
    lw.wv = lin(kv, d);
    lw.wo = lin(d, q);
    if (m.arch.qkv_bias) {
      lw.bq = random_weights(q, 0.1f, rng);
      lw.bk = random_weights(kv, 0.1f, rng);
      lw.bv = random_weights(kv, 0.1f, rng);
    }
    if (m.arch.qk_norm == model::QkNorm::kPerHead) {
      lw.q_norm = nrm(size_t(c.head_dim));
      lw.k_norm = nrm(size_t(c.head_dim));
    } else if (m.arch.qk_norm == model::QkNorm::kFull) {
      lw.q_norm = nrm(q);
      lw.k_norm = nrm(kv);
    }
    if (m.arch.post_attn_norm) lw.post_attn_norm = nrm(d);
    if (m.arch.pre_ffn_norm) lw.ffn_norm = nrm(d);
    lw.w_gate = lin(ff, d);
    lw.w_up = lin(ff, d);
    lw.w_down = lin(d, ff);
    if (m.arch.post_ffn_norm) lw.post_ffn_norm = nrm(d);
    w.layers.push_back(std::move(lw));
  }
  return m;
}

inline std::vector<int> random_tokens(size_t n, int n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, n_vocab - 1);
  std::vector<int> t(n);
  for (int& x : t) x = u(rng);
  return t;
}

}  // namespace kvaudit::engine::testing
