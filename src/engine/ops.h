// The engine's numeric operations on host memory (the CPU backend). Each op is the formula it
// cites, with a fixed reduction order: a value never depends on how many other tokens or
// sequences share the call (batch invariance, SPEC.md §4 "ragged, no padding effects").
// A CUDA backend adds `_cuda` counterparts with the same contracts (STYLE.md §2, Kernels).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace kvaudit::model {
class WeightMatrix;
}

namespace kvaudit::engine::cpu {

// ---------------------------------------------------------------- dense algebra

// y = x @ w.T  (torch.nn.functional.linear without bias)
// x: [n, k], w: [m, k] (PyTorch Linear layout), y: [n, m].
// Every y[t, o] is dot(x[t], w[o]) with one fixed summation order (see dot()), whatever n is,
// so a token's result is the same alone or in any batch. Parallel over output features.
void matmul(const float* x, int64_t n, int64_t k, const float* w, int64_t m, float* y);

// The same with w in the encoding its file stores (model/weight.h, [m, k]): every y[t, o] is
// bit-identical to matmul(x, n, k, w.to_f32().data(), m, y)'s, the weights decoded 8 at a time
// into registers (exactly as io::dequantize_row decodes them) and consumed in the same order.
void matmul(const float* x, int64_t n, int64_t k, const model::WeightMatrix& w, float* y);

// Several products of the same x in one parallel region: y_i = x @ w_i.T, each exactly as
// matmul() computes it (q/k/v and gate/up share their input; one fork/join instead of several).
struct MatmulOut {
  const model::WeightMatrix* w;  // [m, k]
  float* y;                      // [n, m]
};
void matmul_many(const float* x, int64_t n, int64_t k, std::span<const MatmulOut> outs);

// sum_c a[c]*b[c] in the order matmul uses: 8 FMA lanes over c = 0, 8, 16, ..., then a fixed
// horizontal sum, then the tail c >= 8*floor(n/8) one by one.
float dot(const float* a, const float* b, int64_t n);

// y[t, :] += bias  (y: [n, m], bias: [m])
void add_bias(float* y, int64_t n, int64_t m, const float* bias);

// ---------------------------------------------------------------- normalisation

enum class NormKind {
  kRms,         // x * rsqrt(mean(x^2) + eps) * w            (LlamaRMSNorm)
  kRmsOnePlus,  // x * rsqrt(mean(x^2) + eps) * (1 + w)      (Gemma2RMSNorm)
};

// Normalises each of the n rows of width d independently. x and y may alias.
// x, y: [n, d]; w: [d].
void rmsnorm(NormKind kind, const float* x, int64_t n, int64_t d, const float* w, float eps, float* y);

// ---------------------------------------------------------------- activations

// x * sigmoid(x)                                             (torch.nn.functional.silu)
float silu(float x);
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))           (gelu(approximate="tanh"))
float gelu_tanh(float x);
// cap * tanh(x / cap)                                        (Gemma2 soft-capping)
float softcap(float x, float cap);

enum class Activation { kSilu, kGeluTanh };

// out[t, j] = act(gate[t, j]) * up[t, j]: the gated MLP's middle, act(gate_proj(x)) * up_proj(x).
// gate, up: rows of stride ld (>= d_ff; a fused gate_up buffer [n, 2*d_ff] passes up = gate + d_ff,
// ld = 2*d_ff); out: [n, d_ff].
void gated_activation(Activation act, const float* gate, const float* up, int64_t n, int64_t d_ff,
                      int64_t ld, float* out);

// In-place softmax over n values: exp(x - max) / sum, summed left to right.
void softmax(float* x, int64_t n);

// x[i] = softcap(x[i], cap) for n values (cap > 0).
void softcap_inplace(float* x, int64_t n, float cap);

// ---------------------------------------------------------------- rotary embedding

// Rotates the first rot_dim channels of each of n_heads heads of each row by RoPE, NeoX
// "rotate_half" pairing (channel i with i + rot_dim/2), as transformers' apply_rotary_pos_emb:
//   x' = x * cos + rotate_half(x) * sin,  angle = pos * inv_freq[i],  cos/sin times attn_factor.
// x: [n, n_heads*head_dim] in place; row t has position first_pos + t. inv_freq: [rot_dim/2].
void rope(float* x, int64_t n, int n_heads, int head_dim, const std::vector<float>& inv_freq,
          float attn_factor, int64_t first_pos);

// ---------------------------------------------------------------- attention

struct AttentionParams {
  int n_heads = 0;
  int n_kv_heads = 0;     // GQA: query head h reads KV head h / (n_heads / n_kv_heads)
  int head_dim = 0;
  float scale = 0;        // 1/sqrt(query_pre_attn_scalar or head_dim)
  float softcap = 0;      // > 0: scores = cap * tanh(scores / cap) before the mask (Gemma2)
  int64_t window = 0;     // > 0: query at p sees key j iff p - j < window (sliding window)
};

// Causal attention of one query head h over the cached keys/values of one sequence:
//   out = softmax(mask(softcap(q k^T * scale))) v     (eager_attention_forward)
// q: [n_q, n_heads*head_dim], rows at positions first_pos..first_pos+n_q-1;
// k, v: [n_kv, n_kv_heads*head_dim] with n_kv >= first_pos + n_q (cache rows 0..n_kv-1);
// out: [n_q, n_heads*head_dim], only head h's columns are written.
void attention_head(const AttentionParams& p, int h, const float* q, int64_t n_q, int64_t first_pos,
                    const float* k, const float* v, int64_t n_kv, float* out);

// All heads of one sequence (parallel over heads).
void attention(const AttentionParams& p, const float* q, int64_t n_q, int64_t first_pos,
               const float* k, const float* v, int64_t n_kv, float* out);

}  // namespace kvaudit::engine::cpu
