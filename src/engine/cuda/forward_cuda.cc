// The decoder forward pass on one CUDA device, step for step the one of cpu/forward.cc (each step
// quotes the transformers expression it mirrors). The new tokens of every sequence form one
// activation x: [n_tokens, d_model] on the device; weight matmuls run once over all rows,
// attention once over all (row, head) pairs, each row reading its own sequence's cache.
//
// KV caches, two paths chosen per sequence when the backend first sees it:
// - On the device (quantize-on-write): when the sequence starts here (position 0) and every layer's
//   K and V scheme has a kv::KvLayout (fp16, bf16, intB token/head/group/channel/tensor with or
//   without a residual window, KIVI, fp8, llama.cpp blocks), its caches live on the device only,
//   packed at the scheme's size: each layer's new rows are quantized there (kv_write_cuda, the
//   CPU's codes and parameters bit for bit) and attention dequantizes them as it reads. The host
//   caches stay empty; no host round trip, no synchronisation.
// - Through the host caches (every other scheme: +had, +protect, @pre keys, nuq, --compat paper's
//   per-append fits, tensor with a window; a sequence another backend started; BackendOptions
//   cuda_kv_on_host): the host kv::LayerCache (the CPU reference quantizers) receives each layer's
//   new K/V rows (one device -> host copy per layer for the batch), and the rows the caches changed
//   go back in one host -> device copy, scattered into the sequence's fp32 copy of its rows().
// Both kinds share a batch; the device state lives in the Sequence (backend_state), freed with it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <tuple>
#include <unordered_set>
#include <utility>

#include <cuda_profiler_api.h>

#include "core/error.h"
#include "core/half.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/ops_cuda.h"
#include "engine/cuda/timeline.h"
#include "engine/sequence_access.h"
#include "model/rope.h"

namespace kvaudit::engine {
namespace {

using cuda::DeviceBuffer;
using cuda::WeightType;

// A weight matrix [rows, cols] on the device in its storage type.
struct DevMatrix {
  WeightType type = WeightType::kF32;
  DeviceBuffer<float> f32;
  DeviceBuffer<uint16_t> bf16;  // bfloat16 bits, rounded to nearest even (as torch's .to(bfloat16))
  const uint16_t* packed = nullptr;  // or the bits inside a layer's packed buffer (pack_matrices)
  const void* ptr() const {
    if (type == WeightType::kF32) return f32.data();
    return packed ? packed : bf16.data();
  }
};

std::vector<uint16_t> to_bf16_bits(const std::vector<float>& w) {
  std::vector<uint16_t> h(w.size());
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < w.size(); ++i) h[i] = float_to_bf16(w[i]);
  return h;
}

// One tensor at a time through fp32 (model/weight.h: never the whole model expanded at once).
DevMatrix upload_matrix(const model::WeightMatrix& m, WeightType type) {
  const std::vector<float> w = m.to_f32();
  DevMatrix d;
  d.type = type;
  if (type == WeightType::kF32) {
    d.f32.upload(w);
  } else {
    d.bf16.upload(to_bf16_bits(w));
  }
  return d;
}

// bf16 matrices of one k (q/k/v, gate/up) back to back in one buffer, so that the products that
// share an input run as one (ops_cuda.h, lt_matmul_many_cuda); each DevMatrix points into it.
DeviceBuffer<uint16_t> pack_matrices(std::initializer_list<std::pair<const model::WeightMatrix*, DevMatrix*>> parts,
                                     WeightType type) {
  std::vector<uint16_t> all;
  std::vector<size_t> offsets;
  for (const auto& [w, d] : parts) {
    const std::vector<uint16_t> h = to_bf16_bits(w->to_f32());
    offsets.push_back(all.size());
    all.insert(all.end(), h.begin(), h.end());
  }
  DeviceBuffer<uint16_t> buf(all);
  size_t i = 0;
  for (const auto& [w, d] : parts) {
    d->type = type;
    d->packed = buf.data() + offsets[i++];
  }
  return buf;
}

// gate|up for lt_gated_cuda: their rows interleaved by 8 (rows 16i .. 16i + 7 of the buffer are
// gate's 8i .. 8i + 7, the next 8 up's), so a 16-column tile of the product holds both inputs of 8
// outputs. gate.packed points at the buffer; up has no matrix of its own (fused_rest only).
DeviceBuffer<uint16_t> pack_gate_up_by8(const model::WeightMatrix& gate, const model::WeightMatrix& up, DevMatrix* g,
                                        DevMatrix* u, WeightType type) {
  const std::vector<uint16_t> gb = to_bf16_bits(gate.to_f32()), ub = to_bf16_bits(up.to_f32());
  const size_t k = size_t(gate.cols()), rows = size_t(gate.rows());
  if (up.rows() != gate.rows() || up.cols() != gate.cols() || rows % 8 != 0)
    runtime_error("CUDA: gate and up of unequal shapes, or not in rows of 8");
  std::vector<uint16_t> all(2 * rows * k);
  for (size_t i = 0; i < rows / 8; ++i) {
    std::copy_n(gb.begin() + std::ptrdiff_t(8 * i * k), 8 * k, all.begin() + std::ptrdiff_t(16 * i * k));
    std::copy_n(ub.begin() + std::ptrdiff_t(8 * i * k), 8 * k, all.begin() + std::ptrdiff_t((16 * i + 8) * k));
  }
  DeviceBuffer<uint16_t> buf(all);
  g->type = u->type = type;
  g->packed = buf.data();
  return buf;
}

struct DevLayer {
  DevMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
  DeviceBuffer<uint16_t> qkv, gate_up;  // kBf16Lt: wq|wk|wv and w_gate|w_up packed (pack_matrices)
  // Vectors stay fp32 (small); empty where the ArchSpec has none (model/weights.h).
  DeviceBuffer<float> attn_norm, bq, bk, bv, q_norm, k_norm, post_attn_norm, ffn_norm, post_ffn_norm;
};

// One layer's K or V of a sequence on the device: its stored rows (kv/layout.h), parameters and
// fp16 residual ring.
struct DevKv {
  kv::KvLayout layout;
  DeviceBuffer<uint32_t> words;     // [rows, row_words]
  DeviceBuffer<float> params;       // [rows, row_params], [blocks, block_params], or the tensor triple
  DeviceBuffer<uint16_t> residual;  // [R, width]
  bool fitted = false;              // tensor: (s, z) taken from the sequence's first rows
  // A per-tensor layout whose (s, z) the next write takes from its rows (the first call only).
  bool awaits_fit() const { return layout.tensor && !fitted; }
  int64_t rows = 0;
  int64_t room_rows = 0;  // the rows words, params and residual hold
  // Room for the rows the sequence is expected to reach (Sequence::expected_tokens) at once; past
  // them, or unknown, kGrowRows rows at a time: a batch's caches cross a boundary together, and
  // every growth is an allocation and a copy per buffer, thousands in one step.
  static constexpr int64_t kGrowRows = 256;
  // Returns whether a buffer moved (the views taken before are stale).
  bool grow(int64_t n, int64_t expected = 0) {
    const kv::KvLayout& L = layout;
    const void* before[3] = {words.data(), params.data(), residual.data()};
    const int64_t room = n <= expected ? expected : (n + kGrowRows - 1) / kGrowRows * kGrowRows;
    if (size_t(room * L.row_words()) > words.size()) words.resize_keep(size_t(room * L.row_words()));
    const size_t n_params = L.tensor      ? 3
                            : L.channel() ? size_t((room + L.block_rows - 1) / L.block_rows * L.block_params())
                                          : size_t(room * L.row_params());
    if (n_params > params.size()) params.resize_keep(n_params);
    if (L.residual > 0 && residual.size() == 0) residual.resize(size_t(L.residual) * size_t(L.width));
    rows = n;
    room_rows = std::max(room_rows, room);
    return before[0] != words.data() || before[1] != params.data() || before[2] != residual.data();
  }
  float* plain_rows() { return reinterpret_cast<float*>(words.data()); }
  cuda::KvView view() { return {layout, words.data(), params.data(), residual.data()}; }
  // What the rows hold: the quantized rows' codes and parameters, the tensor triple, the ring.
  size_t bytes() const {
    const kv::KvLayout& L = layout;
    const int64_t q = L.quantized_rows(rows);
    const int64_t params = L.tensor ? 3 : L.channel() ? q / L.block_rows * L.block_params() : q * L.row_params();
    return size_t(q * L.row_words() + params) * sizeof(float) + residual.size() * sizeof(uint16_t);
  }
};

// Per sequence, [n_layers] K and V: the device-quantized caches (native), or fp32 copies of the host
// caches' rows() (keys rotated; rows == the host caches' size after every forward).
struct SeqDeviceState final : BackendSeqState {
  const void* owner = nullptr;  // the backend that filled it
  uint64_t serial = next_serial();  // which state a call's KV table was built for (addresses recur)
  static uint64_t next_serial() {
    static std::atomic<uint64_t> n{0};
    return ++n;
  }
  bool native = false;
  std::vector<DevKv> k, v;
  // What a decode step's prepare_call reads instead of every layer's K and V (a batch of 512 over
  // 32 layers holds 32k of them): the rows every layer's storage holds, whether the call's KV table
  // has taken every tensor site's fit, and one layout per distinct way of counting quantized rows.
  int64_t room = 0;
  bool fitted = false;
  const std::vector<const kv::KvLayout*>& counting() {
    if (counting_.empty())
      for (size_t l = 0; l < k.size(); ++l)
        for (const kv::KvLayout* L : {&k[l].layout, &v[l].layout})
          if (std::none_of(counting_.begin(), counting_.end(), [&](const kv::KvLayout* c) {
                return c->residual == L->residual && c->channel() == L->channel() && c->block_rows == L->block_rows;
              }))
            counting_.push_back(L);
    return counting_;
  }
  // Whether every layer's K and V layout is cuda::rope_stores (the q/k/v + RoPE launch can store
  // all of this sequence's new rows).
  bool rope_only() {
    if (rope_only_ < 0 && !k.empty())  // (a state's layouts are fixed once it has them)
      rope_only_ = std::all_of(k.begin(), k.end(), [](const DevKv& x) { return cuda::rope_stores(x.layout); }) &&
                   std::all_of(v.begin(), v.end(), [](const DevKv& x) { return cuda::rope_stores(x.layout); });
    return rope_only_ == 1;
  }
  size_t kv_bytes() const override {
    size_t b = 0;
    if (native)
      for (size_t l = 0; l < k.size(); ++l) b += k[l].bytes() + v[l].bytes();
    return b;
  }
  bool owns_kv() const override { return native; }

 private:
  std::vector<const kv::KvLayout*> counting_;
  int rope_only_ = -1;
};

struct Slot {
  Sequence* seq;
  SeqDeviceState* state;
  int64_t off;                  // first row in the batch activation
  int64_t n;                    // new tokens
  int64_t pos;                  // position of the first new token
  const std::vector<float>* inv_freq;  // [rotary_dim/2] for this sequence's length (CudaBackend::inv_freq)
};

WeightType weight_type(const model::Model& m, WeightPrecision p) {
  if (p == WeightPrecision::kAuto) {
    if (const char* env = std::getenv("KVAUDIT_CUDA_WEIGHTS")) {
      const std::string e = env;
      if (e == "fp32") return WeightType::kF32;
      if (e == "bf16") return WeightType::kBf16;
      if (e == "bf16-tc") return WeightType::kBf16Tc;
      if (e == "bf16-lt") return WeightType::kBf16Lt;
      if (e == "bf16-lt-fast") return WeightType::kBf16LtFast;
      usage_error("KVAUDIT_CUDA_WEIGHTS: '{}' is not fp32, bf16, bf16-tc, bf16-lt or bf16-lt-fast", e);
    }
    return m.weights_dtype == "BF16" ? WeightType::kBf16 : WeightType::kF32;
  }
  if (p == WeightPrecision::kBf16Tc) return WeightType::kBf16Tc;
  if (p == WeightPrecision::kBf16Lt) return WeightType::kBf16Lt;
  return p == WeightPrecision::kBf16 ? WeightType::kBf16 : WeightType::kF32;
}

// KVAUDIT_CUDA_HOST_TIMES=1: where a call's wall time goes, per count of new rows, printed to stderr
// when the backend goes (docs/PERFORMANCE.md): planning and the call's tables (the GPU idle
// meanwhile), the layers' launches (overlapping the GPU's work), the wait for the result, and the
// GPU's time from the first kernel to the last (events; the gaps between kernels included).
struct HostTimes {
  struct Sum {
    int64_t calls = 0;
    double plan = 0, prepare = 0, launch = 0, wait = 0, gpu = 0;
  };
  bool on = false;
  std::map<int64_t, Sum> by_rows;
  cudaEvent_t start = nullptr, end = nullptr;
  static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  ~HostTimes() {
    for (const auto& [rows, t] : by_rows) {
      const double k = 1e3 / double(t.calls);
      std::fprintf(stderr,
                   "cuda host times, %lld new rows, %lld calls, ms per call: plan %.3f, tables %.3f, launches %.3f, "
                   "wait %.3f; GPU first to last kernel %.3f\n",
                   static_cast<long long>(rows), static_cast<long long>(t.calls), t.plan * k, t.prepare * k,
                   t.launch * k, t.wait * k, t.gpu * k);
    }
    if (start) cudaEventDestroy(start);
    if (end) cudaEventDestroy(end);
  }
};

// KVAUDIT_CUDA_PROFILE_CALL=N: the backend's N-th forward call (1 = the first; in `bench`, the
// prefill, then one call per decode step) runs between cudaProfilerStart and cudaProfilerStop, so
// `ncu --profile-from-start off` profiles exactly that call's kernels (tools/cuda_device_run.sh
// profile): no launch count to guess.
struct ProfileWindow {
  int64_t call = 0, seen = 0;
  ProfileWindow() {
    const char* env = std::getenv("KVAUDIT_CUDA_PROFILE_CALL");
    if (env != nullptr && *env != '\0') {  // empty: unset
      char* end = nullptr;
      call = std::strtoll(env, &end, 10);
      if (end == env || *end != '\0' || call < 1)
        usage_error("KVAUDIT_CUDA_PROFILE_CALL: '{}' is not a call number (1, 2, ...)", env);
    }
  }
  // Opens the window if this is the call; the returned guard closes it when the call ends.
  struct Guard {
    bool on;
    ~Guard() {
      if (on) cudaProfilerStop();
    }
  };
  Guard enter() {
    const bool on = call > 0 && ++seen == call;
    if (on) KVAUDIT_CUDA_CHECK(cudaProfilerStart());
    return Guard{on};
  }
};

// CUDA graphs of decode steps. A call whose every sequence brings one token repeats, step after
// step, the same launches with the same arguments: only the contents of the buffers they read
// change (the tokens, the rope table, the call's tables), and those are uploaded before the launch.
// Such a call's launches are captured once and replayed as one graph, which saves the CPU's launch
// work and the gaps between ~500 launches a step. What fixes a step's launches is its StepKey (the
// row counts, the attention's key chunks, the KV write's bounds) and the device addresses its kernels
// were given, which stay while no DeviceBuffer is allocated or freed (cuda::allocation_epoch). A
// key is run eagerly the first time (cuBLASLt admissions and scratch growth happen there), captured
// the next time at the same epoch, replayed while key and epoch hold. The kernels and their
// arguments are the eager ones: the same bits (tests/cuda: graphs on against off).
// KVAUDIT_CUDA_GRAPHS=0 or BackendOptions::cuda_graphs = false runs every step eagerly.
struct StepKey {
  int64_t n = 0, n_slots = 0, n_rows = 0, chunks = 0;
  bool greedy = false, grouped = false;
  cuda::KvWriteBounds bounds;
  auto tie() const {
    return std::make_tuple(n, n_slots, n_rows, chunks, greedy, grouped, bounds.new_rows, bounds.quantized, bounds.blocks,
                           bounds.width, bounds.fit, bounds.ring, bounds.rope_wrote);
  }
  bool operator<(const StepKey& o) const { return tie() < o.tie(); }
};

std::atomic<int64_t> graph_replays{0};

class StepGraphs {
 public:
  explicit StepGraphs(bool on) : on_(on) {
    if (on_) KVAUDIT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamDefault));
  }
  ~StepGraphs() {
    clear();
    if (stream_) cudaStreamDestroy(stream_);
  }
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;
  bool on() const { return on_; }
  // The stream the backend launches on (blocking: ordered with the legacy stream's copies).
  cudaStream_t stream() const { return stream_; }

  // Runs the step `launch` makes: replayed, captured and replayed, or eagerly (see above).
  template <typename Launch>
  void run(const StepKey& key, const Launch& launch) {
    const uint64_t epoch = cuda::allocation_epoch();
    if (entries_.size() >= kMaxEntries && !entries_.count(key)) evict_oldest();
    Entry& e = entries_[key];
    e.used = ++steps_;
    if (e.exec && e.epoch == epoch) {
      KVAUDIT_CUDA_CHECK(cudaGraphLaunch(e.exec, stream_));
      ++graph_replays;
      return;
    }
    if (e.exec) {  // its addresses moved: capture again
      cudaGraphExecDestroy(e.exec);
      e.exec = nullptr;
    }
    if (e.seen && e.epoch == epoch && e.failures < kMaxFailures) {
      if (capture(e, launch)) {
        e.epoch = cuda::allocation_epoch();
        KVAUDIT_CUDA_CHECK(cudaGraphLaunch(e.exec, stream_));
        ++graph_replays;
        return;
      }
      ++e.failures;
    }
    launch();
    e.seen = true;
    e.epoch = cuda::allocation_epoch();
  }

 private:
  struct Entry {
    cudaGraphExec_t exec = nullptr;
    uint64_t epoch = 0;
    bool seen = false;
    int failures = 0;
    uint64_t used = 0;  // the step that last ran it
  };
  // A launch sequence that cannot be captured (an allocation or a synchronous copy inside it) throws
  // or ends the capture with an error: the step then runs eagerly, and after kMaxFailures the key
  // always does.
  template <typename Launch>
  bool capture(Entry& e, const Launch& launch) {
    cudaGraph_t g = nullptr;
    if (cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    try {
      launch();
    } catch (const std::exception&) {
      if (cudaStreamEndCapture(stream_, &g) == cudaSuccess && g) cudaGraphDestroy(g);
      (void)cudaGetLastError();
      return false;
    }
    if (cudaStreamEndCapture(stream_, &g) != cudaSuccess || !g) {
      (void)cudaGetLastError();
      return false;
    }
    const cudaError_t made = cudaGraphInstantiate(&e.exec, g, 0);
    cudaGraphDestroy(g);
    if (made != cudaSuccess) {
      e.exec = nullptr;
      (void)cudaGetLastError();
      return false;
    }
    return true;
  }
  // The key unused longest goes (its graph with it): the keys a decode loop still alternates
  // between keep theirs.
  void evict_oldest() {
    auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                   [](const auto& a, const auto& b) { return a.second.used < b.second.used; });
    if (oldest->second.exec) cudaGraphExecDestroy(oldest->second.exec);
    entries_.erase(oldest);
  }
  void clear() {
    for (auto& [key, e] : entries_)
      if (e.exec) cudaGraphExecDestroy(e.exec);
    entries_.clear();
  }
  static constexpr size_t kMaxEntries = 16;  // a decode loop alternates between a few keys
  static constexpr int kMaxFailures = 2;
  bool on_;
  cudaStream_t stream_ = nullptr;
  std::map<StepKey, Entry> entries_;
  uint64_t steps_ = 0;
};

// KVAUDIT_CUDA_ATTN_TILES=0: every prefill row through attention's row kernel (the A/B of
// docs/PERFORMANCE.md; the same bits either way).
bool attn_tiles_on() {
  static const bool on = cuda::env_flag("KVAUDIT_CUDA_ATTN_TILES", true);
  return on;
}

// KVAUDIT_CUDA_KV_IN_ROPE=0: the fp32 and bf16 caches' new rows stored by the KV write's own launch
// instead of the q/k/v + RoPE launch (the A/B of docs/PERFORMANCE.md; the same bits either way).
bool kv_in_rope_on() {
  static const bool on = cuda::env_flag("KVAUDIT_CUDA_KV_IN_ROPE", true);
  return on;
}

// KVAUDIT_CUDA_QKV_ROPE=0: q|k|v split, biased and rotated by separate launches (the A/B of
// docs/PERFORMANCE.md; the same bits either way).
bool qkv_rope_on() {
  static const bool on = cuda::env_flag("KVAUDIT_CUDA_QKV_ROPE", true);
  return on;
}

bool graphs_on(const BackendOptions& opt) {
  const char* env = std::getenv("KVAUDIT_CUDA_GRAPHS");
  if (env == nullptr || *env == '\0' || !opt.cuda_graphs) return opt.cuda_graphs;
  const std::string e = env;
  if (e != "0" && e != "1") usage_error("KVAUDIT_CUDA_GRAPHS: '{}' is not 0 or 1", e);
  return e == "1";
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(const model::Model& m, const BackendOptions& opt);
  Device device() const override { return Device::kCuda; }
  const model::Model& model() const override { return m_; }
  Logits forward(std::span<const SeqInput> batch, const Hooks* hooks) override { return run(batch, hooks, nullptr); }
  std::vector<int> forward_greedy(std::span<const SeqInput> batch, const Hooks* hooks) override {
    std::vector<int> next;
    run(batch, hooks, &next);
    return next;
  }
  int64_t resident_weight_bytes() const override;
  double memory_copy_bandwidth() const override;
  int auto_batch_size(int64_t tokens) const override;

 private:
  // The forward pass; with `greedy`, only each input's last row of logits, reduced to its argmax on
  // the device (no logits come back).
  Logits run(std::span<const SeqInput> batch, const Hooks* hooks, std::vector<int>* greedy);
  // The call's launches, from the embedding to the logits (and their argmax with `greedy`), after
  // every upload they read: what a CUDA graph captures.
  void launch_step(std::vector<Slot>& slots, int64_t n, int64_t n_rows, const Hooks* hooks, bool greedy);
  std::vector<Slot> plan(std::span<const SeqInput> batch);
  // model::rope_inv_freq for a sequence of len positions, computed once per rope_inv_freq_key
  // (a batch's hundreds of sequences would otherwise each pay rotary_dim/2 pow() a call).
  const std::vector<float>& inv_freq(int64_t len) {
    const int key = model::rope_inv_freq_key(m_.config, len);
    auto it = inv_freq_.find(key);
    if (it == inv_freq_.end()) it = inv_freq_.emplace(key, model::rope_inv_freq(m_.config, len)).first;
    return it->second;
  }
  bool device_layouts(const Sequence& seq, SeqDeviceState& st) const;
  void prepare_call(std::vector<Slot>& slots, int64_t n, const Hooks* hooks);
  bool qkv_rope_path(const DevLayer& lw) const;
  void attention_block(int l, std::vector<Slot>& slots, const float* a, int64_t n, const Hooks* hooks);
  void device_kv_hooks(int l, const Slot& s, int64_t n, const Hooks* hooks);
  void host_kv(int l, std::vector<Slot>& slots, const Hooks* hooks);
  void store_kv(int l, Slot& s, const Hooks* hooks);
  void stage_rows(int l, Slot& s, kv::Role role, int64_t first);
  void rebuild_rows(int l, Slot& s);
  void mlp_block(int l, const float* f, int64_t n);
  void fused_rest(int l, int64_t n);
  void norm(const DeviceBuffer<float>& w, const float* x, int64_t rows, int64_t width, float* y) const {
    cuda::rmsnorm_cuda(norm_, x, rows, width, w.data(), m_.config.norm_eps, y);
  }
  // k = k_norm(k) in place on n device rows [n, kv_dim]: per head over head_dim (qwen3) or over the
  // projection (olmo2); nothing for the other architectures (cpu/forward.cc's k_norm).
  void k_norm(int l, float* k, int64_t n) const {
    const auto& c = m_.config;
    const DevLayer& lw = layers_[size_t(l)];
    if (m_.arch.qk_norm == model::QkNorm::kPerHead) norm(lw.k_norm, k, n * c.n_kv_heads, c.head_dim, k);
    if (m_.arch.qk_norm == model::QkNorm::kFull) norm(lw.k_norm, k, n, c.kv_dim(), k);
  }
  // `--compat paper` with `@pre` keys on a model with a k norm: the cache takes the k_proj output
  // (+bias) and the k norm runs on the rows it returns, before RoPE (cpu/forward.cc, the same rule).
  bool keys_before_k_norm(int l, const Slot& s) const {
    return m_.arch.qk_norm != model::QkNorm::kNone && s.seq->policy().compat_paper() && s.seq->policy().keys_pre_rope(l);
  }
  void apply_k_fixups();
  void matmul(const float* x, int64_t n, int64_t k, const DevMatrix& w, int64_t m, float* y) const {
    cuda::matmul_cuda(x, n, k, w.ptr(), w.type, m, y);
  }

  const model::Model& m_;
  bool kv_on_host_;  // every sequence through the host caches
  cpu::NormKind norm_;
  cpu::Activation act_;
  float attn_factor_;
  int half_;  // rotary_dim / 2
  DevMatrix embed_, lm_head_;  // lm_head_ empty when tied
  DeviceBuffer<float> final_norm_;
  std::vector<DevLayer> layers_;
  // Scratch, reused across calls (device unless named _host).
  DeviceBuffer<float> x_, a_, q_, att_, o_, gate_, up_, logits_;  // as cpu/forward.cc
  // fused_: the cuBLASLt products' chunk sums added by the kernels that consume them (fused_rest).
  bool fused_ = false;
  bool lt_invariant_ = true;
  cuda::AttnMath attn_math_ = cuda::AttnMath::kFp32;
  DeviceBuffer<uint16_t> ab_, xb_;  // bf16 bits: the norms' outputs [n, d]; o_proj's and down's inputs
  DeviceBuffer<float> kv_;             // [2, n, kv_dim]: the new keys, then the new values
  // This call's KV tables, uploaded once (prepare_call): [SlotRows | AttnRow n | order]; the layers'
  // SlotKv [n_layers x slots] apart, uploaded only when it changes (other sequences, storage that
  // moved, a tensor site's first fit): a decode loop's steps reuse it.
  DeviceBuffer<uint8_t> call_dev_;
  DeviceBuffer<cuda::SlotKv> kv_table_;
  std::map<int, std::vector<float>> inv_freq_;  // by model::rope_inv_freq_key
  std::vector<uint64_t> kv_table_for_;  // the states' serials it holds, in slot order
  bool kv_table_fits_ = false;          // it asks for tensor fits (the next call's must not)
  const cuda::SlotKv* slot_kv_ = nullptr;
  const cuda::SlotRows* slot_rows_ = nullptr;
  const cuda::AttnRow* attn_rows_ = nullptr;
  const int64_t* attn_order_ = nullptr;  // the rows grouped by layout kind (attention_cuda's order), or null
  cuda::AttnTiles attn_tiles_{};          // the call's prefill tiles (n_tiles 0: none)
  std::vector<cuda::AttnTile> tiles_host_;
  std::vector<int64_t> rest_host_;
  cuda::KvWriteBounds bounds_;             // the call's device-quantized sequences (kv_write_cuda)
  bool kv_in_rope_ = false;                // the call's q/k/v + RoPE launches store the rope_stores sites
  bool any_device_ = false, any_host_ = false;
  DeviceBuffer<int> tokens_, next_;  // the new tokens; forward_greedy's argmax per input
  DeviceBuffer<float> cs_;             // rope table [n, 2*half] of the new rows
  DeviceBuffer<int64_t> out_rows_;     // [n_rows] rows of x whose logits are wanted
  DeviceBuffer<uint8_t> staged_dev_;   // one layer's upload: segments, attention rows, values
  cuda::PinnedBuffer<float> kv_host_;  // host copy of kv_ (one layer)
  cuda::PinnedBuffer<uint8_t> staged_host_;
  // One layer's upload being assembled: where the changed cache rows go, and their values.
  std::vector<cuda::CopySegment> segments_;
  std::vector<float> staged_;
  std::vector<float> cs_host_, hook_host_, hook_k_host_, cs_tmp_;
  // Device key rows staged un-normed (keys_before_k_norm): normed, then rotated, after the upload.
  struct KFixup {
    int layer;
    float* rows;        // device, first changed row
    int64_t n, first;   // rows, position of the first
    const Slot* slot;
  };
  std::vector<KFixup> k_fixups_;
  DeviceBuffer<float> fix_cs_, hook_k_;  // a fixup's rope table; a hook's copy of new keys
  HostTimes times_;
  ProfileWindow profile_;
  StepGraphs graphs_;
};

bool kv_on_host(const BackendOptions& opt) {
  const char* env = std::getenv("KVAUDIT_CUDA_KV");
  if (env == nullptr || opt.cuda_kv_on_host) return opt.cuda_kv_on_host;
  const std::string e = env;
  if (e != "host" && e != "device") usage_error("KVAUDIT_CUDA_KV: '{}' is not host or device", e);
  return e == "host";
}

CudaBackend::CudaBackend(const model::Model& m, const BackendOptions& opt)
    : m_(m), kv_on_host_(kv_on_host(opt)), graphs_(graphs_on(opt)) {
  model::validate_config(m.config, m.path);
  const char* times = std::getenv("KVAUDIT_CUDA_HOST_TIMES");
  times_.on = times != nullptr && std::string(times) == "1";
  if (times_.on) {
    KVAUDIT_CUDA_CHECK(cudaEventCreate(&times_.start));
    KVAUDIT_CUDA_CHECK(cudaEventCreate(&times_.end));
  }
  cuda::keep_pool_memory();
  cuda::timeline_start();  // a measurement build's records (timeline.h); nothing otherwise
  norm_ = m.arch.norm == model::NormKind::kRms ? cpu::NormKind::kRms : cpu::NormKind::kRmsOnePlus;
  act_ = m.config.act == model::Activation::kSilu ? cpu::Activation::kSilu : cpu::Activation::kGeluTanh;
  attn_factor_ = model::rope_attention_scaling(m.config);
  half_ = m.config.rotary_dim() / 2;
  const WeightType wt = weight_type(m, opt.cuda_weights);
  if (wt == WeightType::kBf16Tc || wt == WeightType::kBf16Lt || wt == WeightType::kBf16LtFast) {
    const auto& c = m.config;
    for (const int64_t k : {int64_t(c.d_model), int64_t(c.n_heads) * c.head_dim, int64_t(c.d_ff)})
      if (k % 8 != 0)
        usage_error("{}: bf16 tensor-core matmuls need widths that are multiples of 8; this model has {} "
                    "(use KVAUDIT_CUDA_WEIGHTS=fp32 or bf16)", m.path, k);
  }
  // Where each norm directly precedes a product and the products' sums go straight into a norm or
  // the activation (no post-norms), the sums are added inside those kernels (fused_rest).
  const model::ArchSpec& arch = m.arch;
  fused_ = (wt == WeightType::kBf16Lt || wt == WeightType::kBf16LtFast) && arch.pre_attn_norm && arch.pre_ffn_norm &&
           !arch.post_attn_norm && !arch.post_ffn_norm;
  lt_invariant_ = wt != WeightType::kBf16LtFast;
  // bf16-lt runs as transformers runs a bf16 model: attention on fp16 tensor cores too.
  attn_math_ = wt == WeightType::kBf16Lt || wt == WeightType::kBf16LtFast ? cuda::AttnMath::kFp16TensorCores
                                                                           : cuda::AttnMath::kFp32;
  const model::Weights& w = m.weights;
  embed_ = upload_matrix(w.embed, wt);
  if (!w.lm_head.empty()) lm_head_ = upload_matrix(w.lm_head, wt);
  final_norm_.upload(w.final_norm);
  for (const model::LayerWeights& lw : w.layers) {
    DevLayer d;
    if (wt == WeightType::kBf16Lt || wt == WeightType::kBf16LtFast) {
      d.qkv = pack_matrices({{&lw.wq, &d.wq}, {&lw.wk, &d.wk}, {&lw.wv, &d.wv}}, wt);
      d.gate_up = fused_ ? pack_gate_up_by8(lw.w_gate, lw.w_up, &d.w_gate, &d.w_up, wt)
                         : pack_matrices({{&lw.w_gate, &d.w_gate}, {&lw.w_up, &d.w_up}}, wt);
    } else {
      d.wq = upload_matrix(lw.wq, wt);
      d.wk = upload_matrix(lw.wk, wt);
      d.wv = upload_matrix(lw.wv, wt);
      d.w_gate = upload_matrix(lw.w_gate, wt);
      d.w_up = upload_matrix(lw.w_up, wt);
    }
    d.wo = upload_matrix(lw.wo, wt);
    d.w_down = upload_matrix(lw.w_down, wt);
    d.attn_norm.upload(lw.attn_norm);
    d.bq.upload(lw.bq);
    d.bk.upload(lw.bk);
    d.bv.upload(lw.bv);
    d.q_norm.upload(lw.q_norm);
    d.k_norm.upload(lw.k_norm);
    d.post_attn_norm.upload(lw.post_attn_norm);
    d.ffn_norm.upload(lw.ffn_norm);
    d.post_ffn_norm.upload(lw.post_ffn_norm);
    layers_.push_back(std::move(d));
  }
}

std::vector<Slot> CudaBackend::plan(std::span<const SeqInput> batch) {
  const auto& c = m_.config;
  std::vector<Slot> slots;
  std::unordered_set<const Sequence*> seen;
  int64_t off = 0;
  for (const SeqInput& in : batch) {
    check_input(m_, in);
    if (!seen.insert(in.seq).second) usage_error("forward: sequence {} appears twice in one batch", in.seq->id());
    const int64_t n = int64_t(in.tokens.size());
    const int64_t pos = in.seq->position();
    slots.push_back({in.seq, nullptr, off, n, pos, &inv_freq(pos + n)});
    off += n;
  }
  // Each sequence's device state: made on first use, on the device when it starts here and its
  // schemes allow; else fp32 rows rebuilt from its host caches (e.g. a prefix computed on the CPU).
  for (Slot& s : slots) {
    std::shared_ptr<BackendSeqState>& st = SequenceAccess::backend_state(*s.seq);
    auto* state = dynamic_cast<SeqDeviceState*>(st.get());
    if (st && (state == nullptr || state->owner != this)) {
      if (st->owns_kv())
        usage_error("forward: sequence {}'s KV cache lives on another device backend; it cannot continue here",
                    s.seq->id());
      state = nullptr;
    }
    const bool fresh = state == nullptr || (!state->native && state->k[0].rows != s.seq->k_cache(0).size());
    if (fresh) {
      auto made = std::make_shared<SeqDeviceState>();
      made->owner = this;
      made->native = !kv_on_host_ && s.pos == 0 && device_layouts(*s.seq, *made);
      state = made.get();
      st = std::move(made);
      s.state = state;
      if (!state->native) {
        state->k.resize(size_t(c.n_layers));
        state->v.resize(size_t(c.n_layers));
        for (int l = 0; l < c.n_layers; ++l) {
          state->k[size_t(l)].layout.width = state->v[size_t(l)].layout.width = c.kv_dim();
          rebuild_rows(l, s);
        }
      }
    }
    s.state = state;
  }
  return slots;
}

// The sequence's K/V layouts when every layer's scheme is stored on the device (kv::KvLayout).
bool CudaBackend::device_layouts(const Sequence& seq, SeqDeviceState& st) const {
  const auto& c = m_.config;
  const kv::CacheGeometry g{c.n_kv_heads, c.head_dim};
  std::vector<DevKv> k(size_t(c.n_layers)), v(size_t(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    for (const kv::Role role : {kv::Role::K, kv::Role::V}) {
      const std::optional<kv::KvLayout> lay = seq.policy().layout(l, role, g);
      if (!lay || lay->n_sets() > cuda::kMaxKvSets || lay->width > cuda::kMaxKvWidth) return false;
      (role == kv::Role::K ? k : v)[size_t(l)].layout = *lay;
    }
  }
  st.k = std::move(k);
  st.v = std::move(v);
  return true;
}

// Before the layers: every sequence's storage grown for its new rows, and the call's tables (each
// layer's SlotKv, the slots' rows, the attention rows) uploaded in one copy. Growing first keeps
// every device pointer fixed for the whole call.
void CudaBackend::prepare_call(std::vector<Slot>& slots, int64_t n, const Hooks* hooks) {
  const int64_t L = m_.config.n_layers, n_slots = int64_t(slots.size());
  std::vector<cuda::SlotRows> rows;
  std::vector<cuda::AttnRow> attn(static_cast<size_t>(n));
  bounds_ = {};
  bounds_.width = int(m_.config.kv_dim());
  any_device_ = any_host_ = false;
  for (const Slot& s : slots) (s.state->native ? any_device_ : any_host_) = true;
  // Where every layer's q|k|v goes through qkv_rope_cuda with the keys rotated on the device
  // (attention_block), that launch stores the rope_stores sites itself: a sequence whose sites all
  // are needs no KV write, and a batch of such sequences no KV-write launch.
  const bool hook_kv = hooks && hooks->on_kv;
  kv_in_rope_ = kv_in_rope_on() && any_device_ && !any_host_ && !hook_kv &&
                std::all_of(layers_.begin(), layers_.end(), [&](const DevLayer& lw) { return qkv_rope_path(lw); });
  bounds_.rope_wrote = kv_in_rope_;
  bool rebuild = kv_table_fits_ || kv_table_for_.size() != slots.size();
  for (int64_t i = 0; i < n_slots; ++i) {
    Slot& s = slots[size_t(i)];
    const bool dev = s.state->native;
    const bool writes = dev && !(kv_in_rope_ && s.state->rope_only());  // kv_write_cuda has rows of it
    if (writes) bounds_.new_rows = std::max(bounds_.new_rows, s.n);
    rows.push_back({s.off, s.n, s.pos});
    for (int64_t t = 0; t < s.n; ++t) attn[size_t(s.off + t)] = {i, s.pos + t, s.pos + s.n, s.pos};
    rebuild = rebuild || kv_table_for_[size_t(i)] != s.state->serial;
    SeqDeviceState& st = *s.state;
    const int64_t end = s.pos + s.n;
    if (end > st.room || (dev && !st.fitted)) {  // storage to grow, or a first fit to take
      int64_t room = std::numeric_limits<int64_t>::max();
      for (int64_t l = 0; l < L; ++l) {
        DevKv& dk = st.k[size_t(l)];
        DevKv& dv = st.v[size_t(l)];
        const bool moved_k = dk.grow(end, s.seq->expected_tokens());
        const bool moved_v = dv.grow(end, s.seq->expected_tokens());
        rebuild = rebuild || moved_k || moved_v || (dev && (dk.awaits_fit() || dv.awaits_fit()));
        room = std::min({room, dk.room_rows, dv.room_rows});
      }
      st.room = room;
    } else {
      for (int64_t l = 0; l < L; ++l) st.k[size_t(l)].rows = st.v[size_t(l)].rows = end;
    }
    if (writes)
      for (const kv::KvLayout* lay : st.counting()) {  // rows leaving the window, or all new ones
        const int64_t q = lay->quantized_rows(end) - lay->quantized_rows(s.pos);
        if (lay->channel())
          bounds_.blocks = std::max(bounds_.blocks, q / lay->block_rows);
        else
          bounds_.quantized = std::max(bounds_.quantized, q);
        bounds_.ring = bounds_.ring || lay->residual > 0;
      }
  }
  if (rebuild) {
    std::vector<cuda::SlotKv> kv(size_t(L * n_slots));
    kv_table_for_.clear();
    kv_table_fits_ = false;
    for (int64_t i = 0; i < n_slots; ++i) {
      SeqDeviceState& st = *slots[size_t(i)].state;
      const bool dev = st.native;
      kv_table_for_.push_back(st.serial);
      for (int64_t l = 0; l < L; ++l) {
        DevKv& dk = st.k[size_t(l)];
        DevKv& dv = st.v[size_t(l)];
        cuda::SlotKv& e = kv[size_t(l * n_slots + i)];
        e = {dk.view(), dv.view(), dev, dev && dk.awaits_fit(), dev && dv.awaits_fit()};
        kv_table_fits_ = kv_table_fits_ || e.fit_k || e.fit_v;
        if (dev) dk.fitted = dv.fitted = true;
      }
      st.fitted = true;
    }
    kv_table_.upload(kv);
  }
  bounds_.fit = kv_table_fits_;
  // Attention takes the rows grouped by their sequences' layouts (first layer's K and V kinds and
  // widths): a batch that mixes schemes would otherwise give each SM blocks of every kind at once,
  // more code than its instruction cache holds. Which block takes a row never changes a bit.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  const auto kind_key = [&](const cuda::AttnRow& a) {
    const Slot& s = slots[size_t(a.slot)];
    if (!s.state->native) return std::tuple<int, int, int, int, int>(-1, 0, 0, 0, 0);
    const kv::KvLayout &lk = s.state->k[0].layout, &lv = s.state->v[0].layout;
    return std::tuple<int, int, int, int, int>(int(lk.kind), lk.bits * 2 + lk.channel(), int(lv.kind),
                                               lv.bits * 2 + lv.channel(), lk.residual + lv.residual);
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return kind_key(attn[size_t(a)]) < kind_key(attn[size_t(b)]); });
  const bool grouped = n > 0 && kind_key(attn[size_t(order.front())]) != kind_key(attn[size_t(order.back())]);
  // A prompt's rows in tiles that decode each chunk of keys once (tensor-core attention only).
  tiles_host_.clear();
  rest_host_.clear();
  const bool prefill = std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.n > 1; });
  if (prefill && attn_math_ == cuda::AttnMath::kFp16TensorCores && attn_tiles_on())
    cuda::attn_tiles(attn, order, tiles_host_, rest_host_);
  auto align = [](size_t b) { return (b + 255) / 256 * 256; };
  const size_t rows_bytes = rows.size() * sizeof(cuda::SlotRows);
  const size_t rows_at = 0, attn_at = rows_at + align(rows_bytes);
  const size_t order_at = attn_at + align(attn.size() * sizeof(cuda::AttnRow));
  const size_t tiles_at = order_at + align(grouped ? order.size() * sizeof(int64_t) : 0);
  const size_t rest_at = tiles_at + align(tiles_host_.size() * sizeof(cuda::AttnTile));
  const size_t total = rest_at + rest_host_.size() * sizeof(int64_t);
  staged_host_.resize(total);
  std::memcpy(staged_host_.data() + rows_at, rows.data(), rows_bytes);
  std::memcpy(staged_host_.data() + attn_at, attn.data(), attn.size() * sizeof(cuda::AttnRow));
  if (grouped) std::memcpy(staged_host_.data() + order_at, order.data(), order.size() * sizeof(int64_t));
  if (!tiles_host_.empty()) {
    std::memcpy(staged_host_.data() + tiles_at, tiles_host_.data(), tiles_host_.size() * sizeof(cuda::AttnTile));
    std::memcpy(staged_host_.data() + rest_at, rest_host_.data(), rest_host_.size() * sizeof(int64_t));
  }
  call_dev_.resize(total);
  KVAUDIT_CUDA_CHECK(cudaMemcpy(call_dev_.data(), staged_host_.data(), total, cudaMemcpyHostToDevice));
  slot_kv_ = kv_table_.data();
  slot_rows_ = reinterpret_cast<const cuda::SlotRows*>(call_dev_.data() + rows_at);
  attn_rows_ = reinterpret_cast<const cuda::AttnRow*>(call_dev_.data() + attn_at);
  attn_order_ = grouped ? reinterpret_cast<const int64_t*>(call_dev_.data() + order_at) : nullptr;
  attn_tiles_ = {reinterpret_cast<const cuda::AttnTile*>(call_dev_.data() + tiles_at), int64_t(tiles_host_.size()),
                 reinterpret_cast<const int64_t*>(call_dev_.data() + rest_at), int64_t(rest_host_.size())};
}

Logits CudaBackend::run(std::span<const SeqInput> batch, const Hooks* hooks, std::vector<int>* greedy) {
  const auto& c = m_.config;
  const int64_t d = c.d_model;
  const auto profiled = profile_.enter();
  const double t0 = times_.on ? HostTimes::now() : 0;
  std::vector<Slot> slots = plan(batch);
  const int64_t n = slots.empty() ? 0 : slots.back().off + slots.back().n;
  x_.resize(size_t(n * d));
  a_.resize(size_t(n * d));
  o_.resize(size_t(n * d));

  // Token ids and the rope table of every new row (the same for all layers).
  std::vector<int> tokens;
  cs_host_.clear();
  for (size_t i = 0; i < slots.size(); ++i) {
    tokens.insert(tokens.end(), batch[i].tokens.begin(), batch[i].tokens.end());
    cuda::rope_table(*slots[i].inv_freq, attn_factor_, slots[i].pos, slots[i].n, cs_host_);
  }
  tokens_.upload(tokens);
  cs_.upload(cs_host_);
  const double t1 = times_.on ? HostTimes::now() : 0;
  prepare_call(slots, n, hooks);

  // Rows whose logits are wanted: every new token, or the last of each input.
  Logits out;
  out.n_vocab = c.n_vocab;
  out.first_row.push_back(0);
  std::vector<int64_t> rows;  // [n_rows] row of x_ per logits row
  for (size_t i = 0; i < slots.size(); ++i) {
    for (int64_t t = batch[i].all_logits && !greedy ? 0 : slots[i].n - 1; t < slots[i].n; ++t)
      rows.push_back(slots[i].off + t);
    out.first_row.push_back(int64_t(rows.size()));
  }
  const int64_t n_rows = int64_t(rows.size());
  out_rows_.upload(rows);
  logits_.resize(size_t(n_rows * c.n_vocab));
  if (greedy) next_.resize(size_t(n_rows));
  const double t2 = times_.on ? HostTimes::now() : 0;
  if (times_.on) KVAUDIT_CUDA_CHECK(cudaEventRecord(times_.start));
  {
    const cuda::StreamScope on_stream(graphs_.stream());  // the legacy stream when graphs are off
    const bool decode = std::all_of(slots.begin(), slots.end(), [](const Slot& s) { return s.n == 1; });
    if (graphs_.on() && hooks == nullptr && !any_host_ && decode && n > 0) {
      int64_t max_pos = 0;
      for (const Slot& s : slots) max_pos = std::max(max_pos, s.pos);
      const StepKey key{n, int64_t(slots.size()), n_rows, cuda::attention_chunks(max_pos), greedy != nullptr,
                        attn_order_ != nullptr, bounds_};
      graphs_.run(key, [&] { launch_step(slots, n, n_rows, hooks, greedy != nullptr); });
    } else {
      launch_step(slots, n, n_rows, hooks, greedy != nullptr);
    }
  }
  const double t3 = times_.on ? HostTimes::now() : 0;
  if (times_.on) KVAUDIT_CUDA_CHECK(cudaEventRecord(times_.end));
  if (greedy)
    *greedy = next_.download();
  else
    out.data = logits_.download();
  if (times_.on) {
    const double t4 = HostTimes::now();
    float gpu_ms = 0;
    KVAUDIT_CUDA_CHECK(cudaEventElapsedTime(&gpu_ms, times_.start, times_.end));
    HostTimes::Sum& t = times_.by_rows[n];
    ++t.calls;
    t.plan += t1 - t0;
    t.prepare += t2 - t1;
    t.launch += t3 - t2;
    t.wait += t4 - t3;
    t.gpu += 1e-3 * gpu_ms;
  }

  for (size_t i = 0; i < slots.size(); ++i) {
    std::vector<int>& hist = SequenceAccess::tokens(*slots[i].seq);
    hist.insert(hist.end(), batch[i].tokens.begin(), batch[i].tokens.end());
  }
  return out;
}

void CudaBackend::launch_step(std::vector<Slot>& slots, int64_t n, int64_t n_rows, const Hooks* hooks, bool greedy) {
  const auto& c = m_.config;
  const auto& arch = m_.arch;
  const int64_t d = c.d_model;
  // hidden_states = embed_tokens(input_ids) * normalizer   (gemma2: normalizer = sqrt(d_model))
  const float normalizer = arch.embed_scale_sqrt_d ? std::sqrt(float(d)) : 1.0f;
  cuda::embed_cuda(tokens_.data(), n, embed_.ptr(), embed_.type, d, normalizer, x_.data());
  // Each residual add is fused with the norm that follows it (add_rmsnorm_cuda, same bits): the
  // layer's pre-FFN norm, and the next layer's input norm (layer 0's runs on its own).
  if (fused_) {
    ab_.resize(size_t(n * d));
    cuda::add_parts_rmsnorm_cuda(norm_, x_.data(), cuda::PartSums{nullptr, 0}, n, d, layers_[0].attn_norm.data(),
                                 c.norm_eps, nullptr, ab_.data());
  } else if (arch.pre_attn_norm) {
    norm(layers_[0].attn_norm, x_.data(), n, d, a_.data());
  }
  for (int l = 0; l < c.n_layers; ++l) {
    const DevLayer& lw = layers_[size_t(l)];
    // residual = hidden_states; hidden_states = input_layernorm(hidden_states)   (a_, made above)
    const float* a = arch.pre_attn_norm ? a_.data() : x_.data();
    // hidden_states = self_attn(hidden_states)   -> o_ (fused_: attn_output -> att_, the rest below)
    attention_block(l, slots, a, n, hooks);
    if (fused_) {
      fused_rest(l, n);
    } else {
      // hidden_states = post_attention_layernorm(hidden_states)   (gemma2, olmo2)
      if (arch.post_attn_norm) norm(lw.post_attn_norm, o_.data(), n, d, o_.data());
      // hidden_states = residual + hidden_states; residual = hidden_states;
      // hidden_states = pre_feedforward_layernorm(hidden_states)
      const float* f = x_.data();
      if (arch.pre_ffn_norm) {
        cuda::add_rmsnorm_cuda(norm_, x_.data(), o_.data(), n, d, lw.ffn_norm.data(), c.norm_eps, a_.data());
        f = a_.data();
      } else {
        cuda::add_inplace_cuda(x_.data(), o_.data(), n * d);
      }
      // hidden_states = mlp(hidden_states)   -> o_
      mlp_block(l, f, n);
      // hidden_states = post_feedforward_layernorm(hidden_states)   (gemma2, olmo2)
      if (arch.post_ffn_norm) norm(lw.post_ffn_norm, o_.data(), n, d, o_.data());
      // hidden_states = residual + hidden_states   (+ the next layer's input_layernorm)
      if (arch.pre_attn_norm && l + 1 < c.n_layers)
        cuda::add_rmsnorm_cuda(norm_, x_.data(), o_.data(), n, d, layers_[size_t(l + 1)].attn_norm.data(), c.norm_eps,
                               a_.data());
      else
        cuda::add_inplace_cuda(x_.data(), o_.data(), n * d);
    }

    if (hooks && hooks->on_residual) {
      hook_host_ = x_.download();
      for (const Slot& s : slots) hooks->on_residual(s.seq->id(), l, s.pos, hook_host_.data() + s.off * d, s.n, int(d));
    }
  }

  // hidden_states = norm(hidden_states) on the selected rows -> a_: [n_rows, d_model]
  cuda::gather_rows_cuda(x_.data(), out_rows_.data(), n_rows, d, a_.data());
  norm(final_norm_, a_.data(), n_rows, d, a_.data());
  // logits = lm_head(hidden_states)   [n_rows, n_vocab]
  matmul(a_.data(), n_rows, d, m_.weights.lm_head.empty() ? embed_ : lm_head_, c.n_vocab, logits_.data());
  // logits = tanh(logits / final_logit_softcapping) * final_logit_softcapping   (gemma2)
  if (arch.softcaps && c.final_softcap > 0) cuda::softcap_cuda(logits_.data(), int64_t(logits_.size()), c.final_softcap);
  if (greedy) cuda::argmax_rows_cuda(logits_.data(), n_rows, c.n_vocab, next_.data());
}

// Whether layer l's q|k|v can run as one product split, biased and rotated by qkv_rope_cuda (the
// weights packed back to back, no q/k norm between the product and RoPE); attention_block takes
// that path when the keys also rotate on the device.
bool CudaBackend::qkv_rope_path(const DevLayer& lw) const {
  const auto& c = m_.config;
  const int64_t d = c.d_model, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  return qkv_rope_on() && fused_ && m_.arch.qk_norm == model::QkNorm::kNone && c.head_dim % 2 == 0 && lw.wq.packed &&
         lw.wk.packed == lw.wq.packed + q_dim * d && lw.wv.packed == lw.wk.packed + kv_dim * d;
}

void CudaBackend::attention_block(int l, std::vector<Slot>& slots, const float* a, int64_t n, const Hooks* hooks) {
  const auto& c = m_.config;
  const DevLayer& lw = layers_[size_t(l)];
  const int64_t d = c.d_model, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  q_.resize(size_t(n * q_dim));
  att_.resize(size_t(n * q_dim));
  kv_.resize(size_t(2 * n * kv_dim));
  float* k = kv_.data();     // [n, kv_dim]
  float* v = k + n * kv_dim;  // [n, kv_dim]
  // The host path (and the KV hooks) take the keys before RoPE, with the values; else q and k
  // rotate on the device.
  const bool hook_kv = hooks && hooks->on_kv;
  const bool keys_to_host = any_host_ || hook_kv;
  int64_t max_pos = 0;
  for (const Slot& s : slots) max_pos = std::max(max_pos, s.pos + s.n - 1);
  if (!keys_to_host && any_device_ && qkv_rope_path(lw)) {
    // q|k|v as one product, split into q, k and v, biased and rotated (qkv_rope_cuda: the same bits
    // as the steps below; a decode step's product does it to its own tiles), the fp32 and bf16
    // caches' new rows stored too (kv_in_rope_)
    const cuda::QkvBias bias{lw.bq.empty() ? nullptr : lw.bq.data(), lw.bk.empty() ? nullptr : lw.bk.data(),
                             lw.bv.empty() ? nullptr : lw.bv.data()};
    const cuda::RopeKv store{slot_kv_ + l * int64_t(slots.size()), attn_rows_};
    const cuda::QkvRope out{bias, q_.data(), k, v, c.n_heads, c.n_kv_heads, c.head_dim, half_, cs_.data(),
                            kv_in_rope_ ? store : cuda::RopeKv{nullptr, nullptr}};
    cuda::lt_qkv_rope_cuda(ab_.data(), n, d, lw.wq.packed, out, lt_invariant_);
  } else {
    // q = q_proj(x), k = k_proj(x), v = v_proj(x)   (+ bias: qwen2, attention_bias)
    const cuda::MatmulOutput qkv[] = {{lw.wq.ptr(), q_dim, q_.data()}, {lw.wk.ptr(), kv_dim, k}, {lw.wv.ptr(), kv_dim, v}};
    if (fused_)
      cuda::lt_matmul_many_bf16_cuda(ab_.data(), n, d, qkv, lt_invariant_);
    else
      cuda::matmul_many_cuda(a, n, d, lw.wq.type, qkv);
    if (!lw.bq.empty()) cuda::add_bias_cuda(q_.data(), n, q_dim, lw.bq.data());
    if (!lw.bk.empty()) cuda::add_bias_cuda(k, n, kv_dim, lw.bk.data());
    if (!lw.bv.empty()) cuda::add_bias_cuda(v, n, kv_dim, lw.bv.data());
    // q = q_norm(q), k = k_norm(k): per head over head_dim (qwen3) or over the projection (olmo2)
    // (the k norm of a sequence whose cache takes keys before it runs after its upload)
    if (m_.arch.qk_norm == model::QkNorm::kPerHead) norm(lw.q_norm, q_.data(), n * c.n_heads, c.head_dim, q_.data());
    if (m_.arch.qk_norm == model::QkNorm::kFull) norm(lw.q_norm, q_.data(), n, q_dim, q_.data());
    if (std::none_of(slots.begin(), slots.end(), [&](const Slot& s) { return keys_before_k_norm(l, s); })) {
      k_norm(l, k, n);  // one launch for the whole batch
    } else {
      for (const Slot& s : slots)
        if (!keys_before_k_norm(l, s)) k_norm(l, k + s.off * kv_dim, s.n);
    }
    // q = apply_rotary_pos_emb(q), k = apply_rotary_pos_emb(k) on the device
    if (keys_to_host || !any_device_) cuda::rope_cuda(q_.data(), n, c.n_heads, c.head_dim, half_, cs_.data());
    else cuda::rope2_cuda(q_.data(), c.n_heads, k, c.n_kv_heads, n, c.head_dim, half_, cs_.data());
  }
  if (keys_to_host) {
    kv_host_.resize(kv_.size());
    KVAUDIT_CUDA_CHECK(cudaMemcpy(kv_host_.data(), kv_.data(), kv_.size() * sizeof(float), cudaMemcpyDeviceToHost));
  }
  // the device-quantized sequences store their new rows
  if (any_device_) {
    if (keys_to_host) cuda::rope_cuda(k, n, c.n_kv_heads, c.head_dim, half_, cs_.data());
    cuda::kv_write_cuda(slot_kv_ + l * int64_t(slots.size()), slot_rows_, int64_t(slots.size()), bounds_, k, v);
    if (hook_kv)
      for (const Slot& s : slots)
        if (s.state->native) device_kv_hooks(l, s, n, hooks);
  }
  // the others' k, v into their host caches (which may quantize them), the rows they changed back
  if (any_host_) host_kv(l, slots, hooks);

  // attn_output = softmax(softcap(q @ k.T * scaling) + mask) @ v, per (row, head)
  cpu::AttentionParams p;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.scale = c.attn_scale();
  p.softcap = m_.arch.softcaps ? c.attn_softcap : 0.0f;
  p.window = (size_t(l) < c.layer_sliding.size() && c.layer_sliding[size_t(l)]) ? c.sliding_window : 0;
  // (fused_: the o_proj's bf16 input written too, to xb_)
  if (fused_) xb_.resize(size_t(n * std::max<int64_t>(q_dim, c.d_ff)));
  cuda::attention_cuda(p, q_.data(), attn_rows_, slot_kv_ + l * int64_t(slots.size()), n, max_pos, att_.data(),
                       attn_order_, attn_math_, fused_ ? xb_.data() : nullptr,
                       attn_tiles_.n_tiles > 0 ? &attn_tiles_ : nullptr);
  // attn_output = o_proj(attn_output)   (fused_: in fused_rest)
  if (!fused_) matmul(att_.data(), n, q_dim, lw.wo, d, o_.data());
}

// The rest of layer l after attention (fused_), each product's k chunks added by the kernel that
// consumes them (ops_cuda.h, PartSums): the same additions in the same order as the unfused path
// (tests/cuda: the fused kernels against the unfused ones, bit for bit), a pass over memory and
// two launches fewer per product.
void CudaBackend::fused_rest(int l, int64_t n) {
  const auto& c = m_.config;
  const DevLayer& lw = layers_[size_t(l)];
  const int64_t d = c.d_model, q_dim = c.q_dim(), d_ff = c.d_ff;
  uint16_t* ab = ab_.data();
  uint16_t* xb = xb_.data();  // attention wrote attn_output's bf16 bits here (attention_block)
  float* x = x_.data();
  // hidden_states = residual + o_proj(attn_output); residual = hidden_states;
  // hidden_states = pre_feedforward_layernorm(hidden_states)   -> ab (bf16)
  cuda::lt_products_cuda(xb, n, q_dim, lw.wo.ptr(), d, lt_invariant_,
                         [&](const cuda::PartSums& p, int64_t t0, int64_t rows) {
                           cuda::add_parts_rmsnorm_cuda(norm_, x + t0 * d, p, rows, d, lw.ffn_norm.data(), c.norm_eps,
                                                        nullptr, ab + t0 * d);
                         });
  // act_fn(gate_proj(x)) * up_proj(x)   -> xb (bf16; gate|up interleaved: one product of 2·d_ff columns)
  cuda::lt_gated_cuda(ab, n, d, lw.w_gate.ptr(), d_ff, act_, lt_invariant_, xb);
  // hidden_states = residual + down_proj(...)   (+ the next layer's input_layernorm -> ab)
  const float* next = l + 1 < c.n_layers ? layers_[size_t(l + 1)].attn_norm.data() : nullptr;
  cuda::lt_products_cuda(xb, n, d_ff, lw.w_down.ptr(), d, lt_invariant_,
                         [&](const cuda::PartSums& p, int64_t t0, int64_t rows) {
                           cuda::add_parts_rmsnorm_cuda(norm_, x + t0 * d, p, rows, d, next, c.norm_eps, nullptr,
                                                        ab + t0 * d);
                         });
}

// What the KV hooks see of a device-quantized sequence (its rows in kv_host_, before RoPE): the
// keys, the keys rotated (rope_host rounds as the device does), the values; as store_kv on the CPU.
void CudaBackend::device_kv_hooks(int l, const Slot& s, int64_t n, const Hooks* hooks) {
  const auto& c = m_.config;
  const int64_t kv_dim = c.kv_dim();
  const float* k = kv_host_.data() + s.off * kv_dim;
  const float* v = kv_host_.data() + (n + s.off) * kv_dim;
  hooks->on_kv(s.seq->id(), l, KvStage::kKeyPreRope, s.pos, k, s.n, int(kv_dim));
  hook_k_host_.assign(k, k + s.n * kv_dim);
  cuda::rope_host(hook_k_host_.data(), s.n, c.n_kv_heads, c.head_dim, half_, cs_host_.data() + s.off * 2 * half_);
  hooks->on_kv(s.seq->id(), l, KvStage::kKeyPostRope, s.pos, hook_k_host_.data(), s.n, int(kv_dim));
  hooks->on_kv(s.seq->id(), l, KvStage::kValue, s.pos, v, s.n, int(kv_dim));
}

// The host-cache path of one layer for the sequences on it: their new K/V rows (in kv_host_) into
// their caches (store_kv), and the rows the caches changed back up in one copy, scattered on the
// device into their fp32 rows.
void CudaBackend::host_kv(int l, std::vector<Slot>& slots, const Hooks* hooks) {
  segments_.clear();
  staged_.clear();
  for (Slot& s : slots)
    if (!s.state->native) store_kv(l, s, hooks);
  if (segments_.empty()) return;
  // One upload: [segments | values], 256-byte aligned.
  const size_t seg_bytes = segments_.size() * sizeof(cuda::CopySegment);
  const size_t values_at = (seg_bytes + 255) / 256 * 256;
  const size_t total = values_at + staged_.size() * sizeof(float);
  staged_host_.resize(total);
  std::memcpy(staged_host_.data(), segments_.data(), seg_bytes);
  std::memcpy(staged_host_.data() + values_at, staged_.data(), staged_.size() * sizeof(float));
  staged_dev_.resize(total);
  KVAUDIT_CUDA_CHECK(cudaMemcpy(staged_dev_.data(), staged_host_.data(), total, cudaMemcpyHostToDevice));
  int64_t max_n = 0;
  for (const cuda::CopySegment& sg : segments_) max_n = std::max(max_n, sg.n);
  cuda::scatter_cuda(reinterpret_cast<const cuda::CopySegment*>(staged_dev_.data()), int64_t(segments_.size()), max_n,
                     reinterpret_cast<const float*>(staged_dev_.data() + values_at));
  apply_k_fixups();
}

// Stages the host cache's rows first..size-1 (the rows its last append changed) for this layer's
// upload into the sequence's device rows. With a pre-RoPE key scheme (SPEC.md §3 `@pre`) the cache
// holds un-rotated keys; the staged copy is rotated here (rope_host rounds as the device would).
void CudaBackend::stage_rows(int l, Slot& s, kv::Role role, int64_t first) {
  const auto& c = m_.config;
  const int64_t kv_dim = c.kv_dim();
  const bool keys = role == kv::Role::K;
  const kv::LayerCache& cache = keys ? s.seq->k_cache(l) : s.seq->v_cache(l);
  DevKv& dst = keys ? s.state->k[size_t(l)] : s.state->v[size_t(l)];
  if (dst.rows < cache.size()) dst.grow(cache.size());  // prepare_call grew it for this call already
  const int64_t n = cache.size() - first;
  if (n <= 0) return;
  const size_t at = staged_.size();
  segments_.push_back({int64_t(at), dst.plain_rows() + first * kv_dim, n * kv_dim});
  staged_.insert(staged_.end(), cache.rows() + first * kv_dim, cache.rows() + cache.size() * kv_dim);
  if (keys && keys_before_k_norm(l, s)) {
    k_fixups_.push_back({l, dst.plain_rows() + first * kv_dim, n, first, &s});  // norm, then RoPE, on the device
  } else if (keys && s.seq->policy().keys_pre_rope(l)) {
    cs_tmp_.clear();
    cuda::rope_table(*s.inv_freq, attn_factor_, first, n, cs_tmp_);
    cuda::rope_host(staged_.data() + at, n, c.n_kv_heads, c.head_dim, half_, cs_tmp_.data());
  }
}

// The sequence's device rows of layer l made from its host caches (a sequence another backend
// advanced, e.g. a prefix computed on the CPU): staged and copied at once.
void CudaBackend::rebuild_rows(int l, Slot& s) {
  segments_.clear();
  staged_.clear();
  stage_rows(l, s, kv::Role::K, 0);
  stage_rows(l, s, kv::Role::V, 0);
  for (const cuda::CopySegment& sg : segments_)
    KVAUDIT_CUDA_CHECK(cudaMemcpy(sg.dst, staged_.data() + sg.offset, size_t(sg.n) * sizeof(float), cudaMemcpyHostToDevice));
  apply_k_fixups();
}

// The key rows staged un-normed (keys_before_k_norm), now on the device: k_norm, then RoPE at
// their positions, as cpu/forward.cc does to the rows the cache returns.
void CudaBackend::apply_k_fixups() {
  const auto& c = m_.config;
  for (const KFixup& f : k_fixups_) {
    k_norm(f.layer, f.rows, f.n);
    cs_tmp_.clear();
    cuda::rope_table(*f.slot->inv_freq, attn_factor_, f.first, f.n, cs_tmp_);
    fix_cs_.upload(cs_tmp_);
    cuda::rope_cuda(f.rows, f.n, c.n_kv_heads, c.head_dim, half_, fix_cs_.data());
  }
  k_fixups_.clear();
}

// This sequence's new keys (in kv_host_) are rotated unless the scheme stores them before RoPE and
// appended to its host caches with the values; the rows the caches changed are staged for upload.
void CudaBackend::store_kv(int l, Slot& s, const Hooks* hooks) {
  const auto& c = m_.config;
  const int64_t kv_dim = c.kv_dim();
  const int64_t n_all = int64_t(kv_host_.size()) / (2 * kv_dim);  // rows of the batch
  float* k = kv_host_.data() + s.off * kv_dim;                    // [s.n, kv_dim]
  const float* v = kv_host_.data() + (n_all + s.off) * kv_dim;    // [s.n, kv_dim]
  const float* cs = cs_host_.data() + s.off * 2 * half_;          // [s.n, 2*half]
  const bool hook = hooks && hooks->on_kv;
  kv::LayerCache& kc = SequenceAccess::k(*s.seq, l);
  kv::LayerCache& vc = SequenceAccess::v(*s.seq, l);
  if (hook) hooks->on_kv(s.seq->id(), l, KvStage::kKeyPreRope, s.pos, k, s.n, int(kv_dim));
  if (s.seq->policy().keys_pre_rope(l)) {
    stage_rows(l, s, kv::Role::K, kc.append(k, s.n));
    if (hook) {
      if (keys_before_k_norm(l, s)) {  // the hook sees k_norm(k) rotated, as on the CPU
        hook_k_.upload(k, size_t(s.n * kv_dim));
        k_norm(l, hook_k_.data(), s.n);
        const std::vector<float> normed = hook_k_.download();
        std::copy(normed.begin(), normed.end(), k);
      }
      cuda::rope_host(k, s.n, c.n_kv_heads, c.head_dim, half_, cs);
      hooks->on_kv(s.seq->id(), l, KvStage::kKeyPostRope, s.pos, k, s.n, int(kv_dim));
    }
  } else {
    cuda::rope_host(k, s.n, c.n_kv_heads, c.head_dim, half_, cs);
    if (hook) hooks->on_kv(s.seq->id(), l, KvStage::kKeyPostRope, s.pos, k, s.n, int(kv_dim));
    stage_rows(l, s, kv::Role::K, kc.append(k, s.n));
  }
  if (hook) hooks->on_kv(s.seq->id(), l, KvStage::kValue, s.pos, v, s.n, int(kv_dim));
  stage_rows(l, s, kv::Role::V, vc.append(v, s.n));
  if (kc.size() != s.pos + s.n || vc.size() != kc.size())
    runtime_error("layer {}: KV cache holds {} rows, expected {}", l, kc.size(), s.pos + s.n);
}

void CudaBackend::mlp_block(int l, const float* f, int64_t n) {
  const auto& c = m_.config;
  const DevLayer& lw = layers_[size_t(l)];
  const int64_t d = c.d_model, d_ff = c.d_ff;
  gate_.resize(size_t(n * d_ff));
  up_.resize(size_t(n * d_ff));
  // down_proj(act_fn(gate_proj(x)) * up_proj(x))
  const cuda::MatmulOutput gate_up[] = {{lw.w_gate.ptr(), d_ff, gate_.data()}, {lw.w_up.ptr(), d_ff, up_.data()}};
  cuda::matmul_many_cuda(f, n, d, lw.w_gate.type, gate_up);
  cuda::gated_activation_cuda(act_, gate_.data(), up_.data(), n, d_ff, gate_.data());
  matmul(gate_.data(), n, d_ff, lw.w_down, d, o_.data());
}

}  // namespace

int64_t cuda_graph_replays() { return graph_replays.load(); }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" / "no device" error
    return 0;
  }
  return n;
}

// As engine::decode_weight_bytes counts the host copy: every layer's matrices and vectors, the
// final norm and the output matrix (the embedding table when tied), in their device types.
int64_t CudaBackend::resident_weight_bytes() const {
  const auto mat = [](const DevMatrix& d) { return int64_t(d.f32.size() * sizeof(float) + d.bf16.size() * sizeof(uint16_t)); };
  const auto vec = [](const DeviceBuffer<float>& v) { return int64_t(v.size() * sizeof(float)); };
  int64_t b = vec(final_norm_) + (lm_head_.f32.size() + lm_head_.bf16.size() > 0 ? mat(lm_head_) : mat(embed_));
  for (const DevLayer& l : layers_) {
    for (const DevMatrix* d : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) b += mat(*d);
    b += int64_t((l.qkv.size() + l.gate_up.size()) * sizeof(uint16_t));
    for (const DeviceBuffer<float>* v : {&l.attn_norm, &l.bq, &l.bk, &l.bv, &l.q_norm, &l.k_norm, &l.post_attn_norm,
                                         &l.ffn_norm, &l.post_ffn_norm})
      b += vec(*v);
  }
  return b;
}

// A device-to-device copy of 1 GiB, median of 5 timed by events, counted as STREAM "copy" does.
double CudaBackend::memory_copy_bandwidth() const {
  const size_t bytes = size_t(1) << 30;
  DeviceBuffer<uint8_t> src(bytes), dst(bytes);
  cudaEvent_t t0, t1;
  KVAUDIT_CUDA_CHECK(cudaEventCreate(&t0));
  KVAUDIT_CUDA_CHECK(cudaEventCreate(&t1));
  std::vector<double> rates;
  for (int r = 0; r < 6; ++r) {
    KVAUDIT_CUDA_CHECK(cudaEventRecord(t0));
    KVAUDIT_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice));
    KVAUDIT_CUDA_CHECK(cudaEventRecord(t1));
    KVAUDIT_CUDA_CHECK(cudaEventSynchronize(t1));
    float ms = 0;
    KVAUDIT_CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    if (r > 0) rates.push_back(2.0 * double(bytes) / (double(ms) * 1e-3));  // the first warms up
  }
  KVAUDIT_CUDA_CHECK(cudaEventDestroy(t0));
  KVAUDIT_CUDA_CHECK(cudaEventDestroy(t1));
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

// At most 512 sequences: on an H200 a 7-8B model's mixed sweep gains 9-12% from 256 to 512
// (docs/PERFORMANCE.md), vLLM's default max_num_seqs being 256; fewer where half the free memory
// would not hold the batch's caches at fp32 (the most a scheme stores per value) and activations.
int CudaBackend::auto_batch_size(int64_t tokens) const {
  constexpr int kMaxBatch = 512;
  size_t free = 0, total = 0;
  KVAUDIT_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  const auto& c = m_.config;
  const double per_seq = double(std::max<int64_t>(tokens, 1)) * double(c.n_layers) * 2.0 * double(c.kv_dim()) * 4.0 +
                         4.0 * double(4 * c.d_model + 2 * c.d_ff + c.n_vocab);
  return int(std::clamp<double>(0.5 * double(free) / per_seq, 1.0, kMaxBatch));
}

std::unique_ptr<Backend> make_cuda_backend(const model::Model& model, const BackendOptions& opt) {
  if (cuda_device_count() == 0) usage_error("--device cuda: no CUDA device is visible (use --device cpu)");
  return std::make_unique<CudaBackend>(model, opt);
}

}  // namespace kvaudit::engine
