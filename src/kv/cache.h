// The seam between the engine and the KV quantizers: one layer's K or V for one sequence.
// kv knows no model: only the geometry of a cache row (SPEC.md §3: a token's vector spans all
// KV heads, n_kv_heads * head_dim values).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace kvaudit::kv {

enum class Role { K, V };

struct CacheGeometry {
  int n_kv_heads = 0;
  int head_dim = 0;
  // True when llama.cpp runs this model with its "normal" RoPE (pairs of adjacent channels; its
  // converter permuted the Q/K rows to match): llama.cpp's key row then holds each head as HF
  // channels 0, D/2, 1, D/2+1, ..., and its block types form key blocks of 32 in that order
  // (kv/schemes/llama_cpp.h, docs/KV_SCHEMES.md). The engine sets it from the architecture.
  bool llama_cpp_pairs_adjacent = false;
  int width() const { return n_kv_heads * head_dim; }
};

class LayerCache {
 public:
  virtual ~LayerCache() = default;
  // Appends n rows [n, width] in stream order (prefill: the prompt; decode: one token). Returns the
  // index of the first row whose stored value changed: the old size, or earlier when a block
  // scheme (channel, KIVI) quantizes its filled residual.
  virtual int64_t append(const float* rows, int64_t n) = 0;
  virtual int64_t size() const = 0;
  // The values attention reads, dequantized: [size(), width]. Valid until the next append.
  virtual const float* rows() const = 0;
  // Bytes the stored representation occupies now (codes + scales + zero points + residual).
  virtual size_t bytes() const = 0;
  // Heap bytes this cache holds now: its storage, spare capacity and scratch (not the per-thread
  // decode buffers that packed caches borrow, see kv/quant_cache.h). Simulated: the float rows;
  // packed: close to bytes().
  virtual size_t resident_bytes() const = 0;
};

// Stores rows unchanged (the 16-bit baseline is computed in the engine's own precision).
std::unique_ptr<LayerCache> make_plain_cache(CacheGeometry g);

}  // namespace kvaudit::kv
