// Hugging Face safetensors: one file (8-byte LE header length, JSON header, data section), a
// directory with model.safetensors, or a sharded directory via model.safetensors.index.json
// (SPEC.md §1). Files are memory-mapped; tensors are converted to float on read.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "io/tensor_source.h"

namespace kvaudit::io {

// One tensor entry of a safetensors header, validated against the file.
struct SafetensorsTensor {
  std::string name;
  std::string dtype;            // "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;   // PyTorch order
  const uint8_t* data = nullptr;  // into the mapping
  size_t nbytes = 0;
};

// Bytes per element of a safetensors dtype name, or 0 when the name is unknown.
size_t safetensors_dtype_size(const std::string& dtype);

// One mapped .safetensors file.
class SafetensorsFile {
 public:
  // Throws UsageError naming the file (and tensor) for every malformed header or range.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return map_.path(); }
  // "__metadata__" (string -> string), empty object when absent.
  const nlohmann::json& metadata() const { return metadata_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& name) const;

 private:
  MappedFile map_;
  nlohmann::json metadata_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> index_;
};

class SafetensorsSource : public TensorSource {
 public:
  // path: a .safetensors file, a directory with model.safetensors, or a directory with
  // model.safetensors.index.json (every shard in its weight_map is opened).
  static std::unique_ptr<SafetensorsSource> open(const std::string& path);

  std::vector<std::string> names() const override;  // sorted
  std::optional<TensorInfo> info(const std::string& name) const override;
  // F32/F16/BF16 only; other dtypes throw UsageError naming file, tensor and dtype.
  void read_f32(const std::string& name, std::span<float> out) const override;
  std::optional<RawTensor> raw(const std::string& name) const override;  // F32, F16, BF16
  std::string describe() const override;

  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  SafetensorsSource() = default;
  std::string root_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  // tensor name -> (file index, tensor index)
  std::map<std::string, std::pair<size_t, size_t>> where_;
};

// A tensor to write: dtype "F32"/"F16"/"BF16"/... and its raw little-endian bytes.
struct SafetensorsWriteTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Writes one .safetensors file atomically (for tests and tiny test models). metadata: an object
// of string values stored as "__metadata__" (omitted when empty). Throws UsageError when a
// tensor's byte count does not match its shape and dtype.
void write_safetensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                       const nlohmann::json& metadata = nlohmann::json::object());

// Convenience: float data stored as dtype F32, F16 or BF16 (rounded to nearest even).
SafetensorsWriteTensor make_safetensors_tensor(const std::string& name, const std::string& dtype,
                                               std::vector<int64_t> shape, std::span<const float> values);

}  // namespace kvaudit::io
