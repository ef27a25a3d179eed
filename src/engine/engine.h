// The inference engine: a Backend runs the model over a ragged batch of sequences (SPEC.md §4).
//   auto be = engine::make_backend(engine::Device::kCpu, model);
//   engine::Sequence seq(model.config, policy);            // policy: shared_ptr<const kv::KvPolicy>
//   engine::Logits out = be->forward({{&seq, prompt}});    // logits of the last prompt token
//   out.last(0)  -> [n_vocab]
// Each sequence owns its token history, its KV policy and one K and one V kv::LayerCache per
// layer; every sequence of a batch may carry its own policy. The new tokens of all sequences are
// concatenated into one [n_tokens, d_model] activation so weight matmuls are shared, attention
// runs per sequence, nothing is padded, and a sequence's logits are bit-identical alone or in
// any batch (the CPU kernels' reduction order does not depend on the batch).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kv/cache.h"
#include "kv/policy.h"
#include "model/model.h"

namespace kvaudit::engine {

enum class Device { kCpu, kCuda };

// "cpu" | "cuda"; anything else is a UsageError naming --device.
Device parse_device(const std::string& name);
// The name parse_device reads.
const char* device_name(Device d);
// The default of --device (SPEC.md §1: cuda when available): kCpu in a build without CUDA.
Device default_device();

// ---------------------------------------------------------------- sequence state

// What a backend keeps per sequence beside the host caches (the CUDA backend: the device copy of
// the rows attention reads, or the device-quantized cache itself).
class BackendSeqState {
 public:
  virtual ~BackendSeqState() = default;
  // Bytes of K and V stored there now, beyond what the host caches hold.
  virtual size_t kv_bytes() const = 0;
  // True when K and V live only there (the host caches stay empty): no other backend can
  // continue the sequence.
  virtual bool owns_kv() const = 0;
};

class Sequence {
 public:
  // id: the caller's handle for this sequence, passed to hooks (e.g. the request index).
  Sequence(const model::ModelConfig& config, std::shared_ptr<const kv::KvPolicy> policy, int64_t id = 0);

  int64_t id() const { return id_; }
  // Tokens fed so far (prompt and generated), in order; position() == tokens().size().
  const std::vector<int>& tokens() const { return tokens_; }
  int64_t position() const { return int64_t(tokens_.size()); }
  const kv::KvPolicy& policy() const { return *policy_; }
  const kv::LayerCache& k_cache(int layer) const { return *k_[size_t(layer)]; }
  const kv::LayerCache& v_cache(int layer) const { return *v_[size_t(layer)]; }
  // Bytes the stored K and V of every layer occupy now (host caches, and a backend's own storage).
  size_t kv_bytes() const;
  // The tokens the sequence may reach (its prompt and the most it may generate), when the caller
  // knows them: a backend may make room for them once instead of growing as they come (the CUDA
  // backend: one allocation per cache rather than a copy of every cache of a batch at once). 0:
  // unknown. Never changes a result.
  void expect_tokens(int64_t n) { expected_tokens_ = n; }
  int64_t expected_tokens() const { return expected_tokens_; }

 private:
  friend class SequenceAccess;  // the backends' view of the caches
  int64_t id_;
  std::shared_ptr<const kv::KvPolicy> policy_;
  std::vector<int> tokens_;
  int64_t expected_tokens_ = 0;
  std::vector<std::unique_ptr<kv::LayerCache>> k_;  // [n_layers]
  std::vector<std::unique_ptr<kv::LayerCache>> v_;  // [n_layers]
  // For layers whose keys are quantized before RoPE (policy.keys_pre_rope): the cache's rows,
  // rotated. [k_[l]->size(), n_kv_heads*head_dim]; empty for the other layers.
  std::vector<std::vector<float>> k_rotated_;
  // A backend's own per-sequence state, freed with the sequence. Null until a backend that keeps
  // state runs the sequence.
  std::shared_ptr<BackendSeqState> backend_state_;
};

// ---------------------------------------------------------------- hooks

enum class KvStage {
  kKeyPreRope,   // k_proj output (+bias, k norm), before RoPE; no k norm under --compat paper @pre
                 // (the cache then takes the k_proj output: forward.cc keys_before_k_norm)
  kKeyPostRope,  // the rotated keys
  kValue,        // v_proj output
};

// Optional observers for diagnosis (SPEC.md §5). Values are what the model computed, before the
// KV cache stores (quantizes) them. Empty functions cost one null check per layer.
struct Hooks {
  // rows: [n, n_kv_heads*head_dim], the new tokens of sequence `seq_id` at positions
  // first_pos..first_pos+n-1 of layer `layer`.
  std::function<void(int64_t seq_id, int layer, KvStage stage, int64_t first_pos, const float* rows,
                     int64_t n, int width)>
      on_kv;
  // h: [n, d_model], the residual stream after decoder layer `layer` (its output) for the new
  // tokens of sequence `seq_id` at positions first_pos..first_pos+n-1.
  std::function<void(int64_t seq_id, int layer, int64_t first_pos, const float* h, int64_t n,
                     int d_model)>
      on_residual;
};

// ---------------------------------------------------------------- forward

struct SeqInput {
  Sequence* seq = nullptr;
  std::span<const int> tokens;  // new tokens (>= 1), appended to the sequence
  bool all_logits = false;      // logits for every new token (prefill semantics), else the last only
};

struct Logits {
  int64_t n_vocab = 0;
  std::vector<float> data;         // [n_rows, n_vocab]
  std::vector<int64_t> first_row;  // [batch + 1]: input i owns rows first_row[i] .. first_row[i+1]-1
  const float* row(int64_t r) const { return data.data() + r * n_vocab; }
  const float* last(size_t i) const { return row(first_row[i + 1] - 1); }
  int64_t rows_of(size_t i) const { return first_row[i + 1] - first_row[i]; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual const model::Model& model() const = 0;
  // Appends each input's tokens to its sequence (K/V into its caches) and returns the logits.
  // A sequence may appear at most once per call. Throws UsageError for a token id outside
  // [0, n_vocab) or an empty input.
  virtual Logits forward(std::span<const SeqInput> batch, const Hooks* hooks = nullptr) = 0;
  // forward for greedy decoding: each input's next token, argmax of its last logits row (first on
  // ties), without handing the logits back (the CUDA backend reduces them on the device).
  virtual std::vector<int> forward_greedy(std::span<const SeqInput> batch, const Hooks* hooks = nullptr);
  // `bench`'s decode bound where the weights live apart from the model's host copy (CUDA: device
  // memory). The bytes of weights a decode step reads there; 0 = the model's as held
  // (engine/throughput.h decode_weight_bytes).
  virtual int64_t resident_weight_bytes() const { return 0; }
  // What a copy within that memory moves per second (bytes read + written); 0 = host memory
  // (measure_memcpy_bandwidth).
  virtual double memory_copy_bandwidth() const { return 0; }
  // The sequences per batch a run takes when the user names none, for sequences of up to `tokens`
  // tokens each: the CPU's threads are busy from a few sequences on (kCpuBatch); a GPU's own
  // answer fills it (CUDA: engine/cuda). The backends are batch-invariant, so it changes no result.
  static constexpr int kCpuBatch = 16;
  virtual int auto_batch_size(int64_t tokens) const {
    (void)tokens;
    return kCpuBatch;
  }
};

// Weights the CUDA backend keeps on the device. kFp32, kBf16: fp32 arithmetic (kBf16 exact for a
// bf16 file); kBf16Tc: bf16 weights on tensor cores (activations as a bf16 hi + lo pair), fp32
// sums; kBf16Lt: bf16 weights and activations rounded to bf16 (as transformers and vLLM run a bf16
// model) through cuBLASLt, fp32 sums: the throughput path. kAuto: kBf16 when the file stores bf16,
// else kFp32; the environment variable KVAUDIT_CUDA_WEIGHTS=fp32|bf16|bf16-tc|bf16-lt overrides
// kAuto (until the commands grow a flag).
enum class WeightPrecision { kAuto, kFp32, kBf16, kBf16Tc, kBf16Lt };

struct BackendOptions {
  int threads = 0;  // OpenMP threads for the CPU backend; 0 = the OpenMP default
  WeightPrecision cuda_weights = WeightPrecision::kAuto;
  // CUDA: keep every sequence's KV through the host caches (the CPU quantizers), as for the schemes
  // the device does not store; for comparisons and tests. KVAUDIT_CUDA_KV=host|device sets it when false.
  bool cuda_kv_on_host = false;
  // CUDA: decode steps replayed as captured CUDA graphs (cuda/forward_cuda.cc, StepGraphs); the
  // same bits either way. KVAUDIT_CUDA_GRAPHS=0 turns them off when this is true.
  bool cuda_graphs = true;
};

// The backend for `device` over `model` (which must outlive it). kCuda in a build without CUDA
// is a UsageError ("built without CUDA").
std::unique_ptr<Backend> make_backend(Device device, const model::Model& model, const BackendOptions& opt = {});

// Index of the largest value (the first one on ties, as torch.argmax).
int argmax(const float* x, int64_t n);

}  // namespace kvaudit::engine
