// The decoder forward pass on the CPU, read top to bottom as the maths (model/arch.h gives the
// block structure; each step quotes the transformers expression it mirrors). The new tokens of
// every sequence of the batch form one activation x: [n_tokens, d_model]; rows of sequence i
// start at off[i]. Weight matmuls run once over all rows; attention runs per (sequence, head).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/ops.h"
#include "engine/sequence_access.h"
#include "model/rope.h"
#include "model/weight.h"

namespace kvaudit::engine {
namespace {

using cpu::matmul;

cpu::NormKind norm_kind(model::NormKind k) {
  return k == model::NormKind::kRms ? cpu::NormKind::kRms : cpu::NormKind::kRmsOnePlus;
}

cpu::Activation activation(model::Activation a) {
  return a == model::Activation::kSilu ? cpu::Activation::kSilu : cpu::Activation::kGeluTanh;
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

// Per-input bookkeeping for one forward call.
struct Slot {
  Sequence* seq;
  int64_t off;        // first row in the batch activation
  int64_t n;          // new tokens
  int64_t pos;        // position of the first new token (tokens already cached)
  std::vector<float> inv_freq;  // [rotary_dim/2] for this sequence's length (longrope)
  const float* k_rows = nullptr;  // [n_kv, kv_dim] keys attention reads (rotated)
  const float* v_rows = nullptr;  // [n_kv, kv_dim]
  int64_t n_kv = 0;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const model::Model& m, const BackendOptions& opt) : m_(m), threads_(opt.threads) {
    if (opt.threads > 0) omp_set_num_threads(opt.threads);
    model::validate_config(m.config, m.path);
    norm_ = norm_kind(m.arch.norm);
    act_ = activation(m.config.act);
    attn_factor_ = model::rope_attention_scaling(m.config);
  }
  Device device() const override { return Device::kCpu; }
  const model::Model& model() const override { return m_; }
  Logits forward(std::span<const SeqInput> batch, const Hooks* hooks) override;

 private:
  std::vector<Slot> plan(std::span<const SeqInput> batch) const;
  void attention_block(int l, std::vector<Slot>& slots, const float* a, int64_t n, const Hooks* hooks);
  void store_kv(int l, Slot& s, const Hooks* hooks);
  void mlp_block(int l, const float* f, int64_t n);
  void norm(const std::vector<float>& w, const float* x, int64_t rows, int64_t width, float* y) const {
    cpu::rmsnorm(norm_, x, rows, width, w.data(), m_.config.norm_eps, y);
  }
  // k = k_norm(k) in place on n rows [n, kv_dim]: per head over head_dim (qwen3) or over the
  // projection (olmo2); nothing for the other architectures.
  void k_norm(const model::LayerWeights& lw, float* k, int64_t n) const {
    const auto& c = m_.config;
    if (m_.arch.qk_norm == model::QkNorm::kPerHead) norm(lw.k_norm, k, n * c.n_kv_heads, c.head_dim, k);
    if (m_.arch.qk_norm == model::QkNorm::kFull) norm(lw.k_norm, k, n, c.kv_dim(), k);
  }
  // `--compat paper` with `@pre` keys on a model with a k norm: the research code hooks k_proj, so
  // the cache takes the k_proj output (+bias) and the k norm runs on the rows it returns, before RoPE.
  bool keys_before_k_norm(int l, const Slot& s) const {
    return m_.arch.qk_norm != model::QkNorm::kNone && s.seq->policy().compat_paper() && s.seq->policy().keys_pre_rope(l);
  }

  const model::Model& m_;
  int threads_;  // --threads; 0: OpenMP's default
  cpu::NormKind norm_;
  cpu::Activation act_;
  float attn_factor_;
  // Scratch, reused across calls.
  std::vector<float> x_;     // [n, d_model]      residual stream
  std::vector<float> a_;     // [n, d_model]      normed input of a sub-block
  std::vector<float> q_;     // [n, n_heads*head_dim]
  std::vector<float> k_;     // [n, n_kv_heads*head_dim]
  std::vector<float> v_;     // [n, n_kv_heads*head_dim]
  std::vector<float> att_;   // [n, n_heads*head_dim]   attention output before o_proj
  std::vector<float> o_;     // [n, d_model]      sub-block output
  std::vector<float> gate_;  // [n, d_ff]
  std::vector<float> up_;    // [n, d_ff]
};

std::vector<Slot> CpuBackend::plan(std::span<const SeqInput> batch) const {
  const auto& c = m_.config;
  std::vector<Slot> slots;
  std::unordered_set<const Sequence*> seen;
  int64_t off = 0;
  for (const SeqInput& in : batch) {
    check_input(m_, in);
    if (!seen.insert(in.seq).second) usage_error("forward: sequence {} appears twice in one batch", in.seq->id());
    const auto& state = SequenceAccess::backend_state(*in.seq);
    if (state && state->owns_kv())
      usage_error("forward: sequence {}'s KV cache lives on the CUDA device; it cannot continue on the CPU",
                  in.seq->id());
    const int64_t n = int64_t(in.tokens.size());
    const int64_t pos = in.seq->position();
    slots.push_back({in.seq, off, n, pos, model::rope_inv_freq(c, pos + n)});
    off += n;
  }
  return slots;
}

Logits CpuBackend::forward(std::span<const SeqInput> batch, const Hooks* hooks) {
  // OpenMP's thread count is per calling thread: serve's scheduler thread (not the one that built
  // the backend) would otherwise run on every core.
  if (threads_ > 0) omp_set_num_threads(threads_);
  const auto& c = m_.config;
  const auto& w = m_.weights;
  const auto& arch = m_.arch;
  const int64_t d = c.d_model;
  std::vector<Slot> slots = plan(batch);
  const int64_t n = slots.empty() ? 0 : slots.back().off + slots.back().n;
  x_.resize(size_t(n * d));
  a_.resize(size_t(n * d));
  o_.resize(size_t(n * d));

  // hidden_states = embed_tokens(input_ids) * normalizer   (gemma2: normalizer = sqrt(d_model))
  const float normalizer = arch.embed_scale_sqrt_d ? std::sqrt(float(d)) : 1.0f;
  // The embedding row is decoded from its stored encoding, one row per token.
  for (size_t i = 0; i < slots.size(); ++i)
    for (int64_t t = 0; t < slots[i].n; ++t) {
      float* xr = x_.data() + (slots[i].off + t) * d;
      w.embed.row_f32(int64_t(batch[i].tokens[size_t(t)]), xr);
      if (arch.embed_scale_sqrt_d)
        for (int64_t j = 0; j < d; ++j) xr[j] *= normalizer;
    }

  for (int l = 0; l < c.n_layers; ++l) {
    const model::LayerWeights& lw = w.layers[size_t(l)];
    // residual = hidden_states; hidden_states = input_layernorm(hidden_states)
    const float* a = x_.data();
    if (arch.pre_attn_norm) {
      norm(lw.attn_norm, x_.data(), n, d, a_.data());
      a = a_.data();
    }
    // hidden_states = self_attn(hidden_states)   -> o_
    attention_block(l, slots, a, n, hooks);
    // hidden_states = post_attention_layernorm(hidden_states)   (gemma2, olmo2)
    if (arch.post_attn_norm) norm(lw.post_attn_norm, o_.data(), n, d, o_.data());
    // hidden_states = residual + hidden_states
    add_inplace(x_.data(), o_.data(), n * d);

    // residual = hidden_states; hidden_states = pre_feedforward_layernorm(hidden_states)
    const float* f = x_.data();
    if (arch.pre_ffn_norm) {
      norm(lw.ffn_norm, x_.data(), n, d, a_.data());
      f = a_.data();
    }
    // hidden_states = mlp(hidden_states)   -> o_
    mlp_block(l, f, n);
    // hidden_states = post_feedforward_layernorm(hidden_states)   (gemma2, olmo2)
    if (arch.post_ffn_norm) norm(lw.post_ffn_norm, o_.data(), n, d, o_.data());
    // hidden_states = residual + hidden_states
    add_inplace(x_.data(), o_.data(), n * d);

    if (hooks && hooks->on_residual)
      for (const Slot& s : slots) hooks->on_residual(s.seq->id(), l, s.pos, x_.data() + s.off * d, s.n, int(d));
  }

  // Rows whose logits are wanted: every new token, or the last of each input.
  Logits out;
  out.n_vocab = c.n_vocab;
  out.first_row.push_back(0);
  std::vector<int64_t> rows;  // [n_rows] row of x_ per logits row
  for (size_t i = 0; i < slots.size(); ++i) {
    for (int64_t t = batch[i].all_logits ? 0 : slots[i].n - 1; t < slots[i].n; ++t) rows.push_back(slots[i].off + t);
    out.first_row.push_back(int64_t(rows.size()));
  }
  const int64_t n_rows = int64_t(rows.size());
  // hidden_states = norm(hidden_states) on the selected rows -> a_: [n_rows, d_model]
  for (int64_t r = 0; r < n_rows; ++r) norm(w.final_norm, x_.data() + rows[size_t(r)] * d, 1, d, a_.data() + r * d);
  // logits = lm_head(hidden_states)   [n_rows, n_vocab]
  out.data.resize(size_t(n_rows * c.n_vocab));
  matmul(a_.data(), n_rows, d, w.output_matrix(), out.data.data());
  // logits = tanh(logits / final_logit_softcapping) * final_logit_softcapping   (gemma2)
  if (arch.softcaps && c.final_softcap > 0) cpu::softcap_inplace(out.data.data(), int64_t(out.data.size()), c.final_softcap);

  for (size_t i = 0; i < slots.size(); ++i) {
    std::vector<int>& hist = SequenceAccess::tokens(*slots[i].seq);
    hist.insert(hist.end(), batch[i].tokens.begin(), batch[i].tokens.end());
  }
  return out;
}

void CpuBackend::attention_block(int l, std::vector<Slot>& slots, const float* a, int64_t n, const Hooks* hooks) {
  const auto& c = m_.config;
  const model::LayerWeights& lw = m_.weights.layers[size_t(l)];
  const int64_t d = c.d_model, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  q_.resize(size_t(n * q_dim));
  k_.resize(size_t(n * kv_dim));
  v_.resize(size_t(n * kv_dim));
  att_.resize(size_t(n * q_dim));
  // q = q_proj(x), k = k_proj(x), v = v_proj(x)   (+ bias: qwen2, attention_bias)
  const cpu::MatmulOut qkv[] = {{&lw.wq, q_.data()}, {&lw.wk, k_.data()}, {&lw.wv, v_.data()}};
  cpu::matmul_many(a, n, d, qkv);
  if (!lw.bq.empty()) cpu::add_bias(q_.data(), n, q_dim, lw.bq.data());
  if (!lw.bk.empty()) cpu::add_bias(k_.data(), n, kv_dim, lw.bk.data());
  if (!lw.bv.empty()) cpu::add_bias(v_.data(), n, kv_dim, lw.bv.data());
  // q = q_norm(q), k = k_norm(k): per head over head_dim (qwen3) or over the projection (olmo2);
  // the k norm of a sequence whose cache takes keys before it runs in store_kv
  if (m_.arch.qk_norm == model::QkNorm::kPerHead) norm(lw.q_norm, q_.data(), n * c.n_heads, c.head_dim, q_.data());
  if (m_.arch.qk_norm == model::QkNorm::kFull) norm(lw.q_norm, q_.data(), n, q_dim, q_.data());
  for (const Slot& s : slots)
    if (!keys_before_k_norm(l, s)) k_norm(lw, k_.data() + s.off * kv_dim, s.n);
  // q, k = apply_rotary_pos_emb(q, k, cos, sin); k, v into the cache (which may quantize them)
  for (Slot& s : slots) {
    cpu::rope(q_.data() + s.off * q_dim, s.n, c.n_heads, c.head_dim, s.inv_freq, attn_factor_, s.pos);
    store_kv(l, s, hooks);
  }

  // attn_output = softmax(softcap(q @ k.T * scaling) + mask) @ v, per (sequence, head)
  cpu::AttentionParams p;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.scale = c.attn_scale();
  p.softcap = m_.arch.softcaps ? c.attn_softcap : 0.0f;
  p.window = (size_t(l) < c.layer_sliding.size() && c.layer_sliding[size_t(l)]) ? c.sliding_window : 0;
  const int64_t n_jobs = int64_t(slots.size()) * c.n_heads;
#pragma omp parallel for schedule(dynamic)
  for (int64_t job = 0; job < n_jobs; ++job) {
    const Slot& s = slots[size_t(job / c.n_heads)];
    cpu::attention_head(p, int(job % c.n_heads), q_.data() + s.off * q_dim, s.n, s.pos, s.k_rows, s.v_rows, s.n_kv,
                        att_.data() + s.off * q_dim);
  }
  // attn_output = o_proj(attn_output)
  matmul(att_.data(), n, q_dim, lw.wo, o_.data());
}

// Rotates this sequence's new keys and appends K and V to its caches. With a pre-RoPE key scheme
// (SPEC.md §3 `@pre`) the cache stores un-rotated keys and the rotated copy is refreshed from the
// first row the cache changed (under `--compat paper` with a k norm: keys before the norm, which
// is then applied to the refreshed rows before RoPE; keys_before_k_norm).
void CpuBackend::store_kv(int l, Slot& s, const Hooks* hooks) {
  const auto& c = m_.config;
  const int64_t kv_dim = c.kv_dim();
  float* k = k_.data() + s.off * kv_dim;  // [s.n, kv_dim]
  const float* v = v_.data() + s.off * kv_dim;
  const bool hook = hooks && hooks->on_kv;
  kv::LayerCache& kc = SequenceAccess::k(*s.seq, l);
  kv::LayerCache& vc = SequenceAccess::v(*s.seq, l);
  if (hook) hooks->on_kv(s.seq->id(), l, KvStage::kKeyPreRope, s.pos, k, s.n, int(kv_dim));
  if (s.seq->policy().keys_pre_rope(l)) {
    const int64_t first = kc.append(k, s.n);
    std::vector<float>& rot = SequenceAccess::k_rotated(*s.seq, l);  // [kc.size(), kv_dim]
    rot.resize(size_t(kc.size() * kv_dim));
    std::copy(kc.rows() + first * kv_dim, kc.rows() + kc.size() * kv_dim, rot.begin() + first * kv_dim);
    const bool before_norm = keys_before_k_norm(l, s);
    if (before_norm) k_norm(m_.weights.layers[size_t(l)], rot.data() + first * kv_dim, kc.size() - first);
    cpu::rope(rot.data() + first * kv_dim, kc.size() - first, c.n_kv_heads, c.head_dim, s.inv_freq, attn_factor_, first);
    s.k_rows = rot.data();
    if (hook) {
      if (before_norm) k_norm(m_.weights.layers[size_t(l)], k, s.n);
      cpu::rope(k, s.n, c.n_kv_heads, c.head_dim, s.inv_freq, attn_factor_, s.pos);
      hooks->on_kv(s.seq->id(), l, KvStage::kKeyPostRope, s.pos, k, s.n, int(kv_dim));
    }
  } else {
    cpu::rope(k, s.n, c.n_kv_heads, c.head_dim, s.inv_freq, attn_factor_, s.pos);
    if (hook) hooks->on_kv(s.seq->id(), l, KvStage::kKeyPostRope, s.pos, k, s.n, int(kv_dim));
    kc.append(k, s.n);
    s.k_rows = kc.rows();
  }
  if (hook) hooks->on_kv(s.seq->id(), l, KvStage::kValue, s.pos, v, s.n, int(kv_dim));
  vc.append(v, s.n);
  s.v_rows = vc.rows();
  s.n_kv = kc.size();
  if (s.n_kv != s.pos + s.n || vc.size() != s.n_kv)
    runtime_error("layer {}: KV cache holds {} rows, expected {}", l, s.n_kv, s.pos + s.n);
}

void CpuBackend::mlp_block(int l, const float* f, int64_t n) {
  const auto& c = m_.config;
  const model::LayerWeights& lw = m_.weights.layers[size_t(l)];
  const int64_t d = c.d_model, d_ff = c.d_ff;
  gate_.resize(size_t(n * d_ff));
  up_.resize(size_t(n * d_ff));
  // down_proj(act_fn(gate_proj(x)) * up_proj(x))
  const cpu::MatmulOut gate_up[] = {{&lw.w_gate, gate_.data()}, {&lw.w_up, up_.data()}};
  cpu::matmul_many(f, n, d, gate_up);
  cpu::gated_activation(act_, gate_.data(), up_.data(), n, d_ff, d_ff, gate_.data());
  matmul(gate_.data(), n, d_ff, lw.w_down, o_.data());
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const model::Model& model, const BackendOptions& opt) {
  return std::make_unique<CpuBackend>(model, opt);
}

}  // namespace kvaudit::engine
