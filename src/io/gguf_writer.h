// A small GGUF v3 writer: tests build tiny and deliberately corrupt files with it, other areas build
// test models. Typing rules for set() without a forced type: bool -> BOOL, string -> STRING,
// non-negative integer -> UINT32 if it fits, else UINT64; negative integer -> INT32 if it fits,
// else INT64; float -> FLOAT32; array -> ARRAY of the element type its first element implies
// (integers widen as needed across the array; mixed kinds throw UsageError).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/ggml_quants.h"
#include "io/gguf.h"

namespace kvaudit::io {

class GgufWriter {
 public:
  // Sets a metadata key (later calls replace earlier ones, keeping first-insertion order).
  // forced: the scalar type, or for arrays the element type.
  void set(const std::string& key, const nlohmann::json& value,
           std::optional<GgufValueType> forced = std::nullopt);
  // bytes must be exactly ggml_row_bytes(type, ne[0]) * (ne[1] * ne[2] * ...).
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                  std::span<const uint8_t> bytes);
  // Convenience: F32/F16/BF16 tensor from floats (ne in ggml order).
  void add_tensor_f32(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                      std::span<const float> values);
  // A tensor whose bytes are produced at write time: fill(dst) writes all of them (dst.size() is
  // ggml_row_bytes(type, ne[0]) * ne[1] * ...). write() then streams tensor by tensor, so a file
  // larger than the memory free (a random 8B model) is written without holding it.
  using Fill = std::function<void(std::span<uint8_t> dst)>;
  void add_tensor_lazy(const std::string& name, GgmlType type, std::vector<int64_t> ne, Fill fill);
  void set_alignment(uint32_t alignment);  // writes general.alignment too

  // The complete file image, and writing it atomically.
  std::string bytes() const;
  void write(const std::string& path) const;

 private:
  struct Kv {
    std::string key;
    nlohmann::json value;
    GgufValueType type;       // ARRAY for arrays
    GgufValueType elem_type;  // for arrays
  };
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> bytes;
    size_t nbytes = 0;
    Fill fill;  // set for lazy tensors (bytes empty)
  };
  std::string header() const;  // through the padding before the data section
  static size_t tensor_bytes(const std::string& name, GgmlType type, const std::vector<int64_t>& ne);
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace kvaudit::io
