// A read-only source of named weight tensors, independent of the file format.
// Shapes are in PyTorch order (row-major, last dimension fastest) whatever the file stores.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/ggml_quants.h"

namespace kvaudit::io {

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order
  std::string dtype;           // as the file names it: "F32", "BF16", "Q4_K", ...
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// A tensor's bytes as stored, in a ggml encoding the engine reads directly (model/weight.h).
struct RawTensor {
  GgmlType type;
  const uint8_t* data;  // into the source's read-only mapping, valid while the source lives
  size_t nbytes;
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual std::vector<std::string> names() const = 0;
  virtual std::optional<TensorInfo> info(const std::string& name) const = 0;
  // Dequantizes/converts the whole tensor into out (out.size() == numel). Throws UsageError
  // naming the file and tensor when it is missing or its bytes are out of range.
  // Safe to call from several threads at once: the readers are const over a read-only mapping.
  virtual void read_f32(const std::string& name, std::span<float> out) const = 0;
  // The stored bytes of `name` when the engine can use them as they are (GGUF types it dequantizes,
  // safetensors F32/F16/BF16), else nullopt (then read_f32 converts). Thread-safe like read_f32.
  virtual std::optional<RawTensor> raw(const std::string& name) const { return std::nullopt; }
  // The path(s) it reads, for messages and the results' model record.
  virtual std::string describe() const = 0;
};

}  // namespace kvaudit::io
