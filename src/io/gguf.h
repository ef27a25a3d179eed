// GGUF v2/v3 reader (SPEC.md §1): metadata key/values, tensor infos and memory-mapped tensor data.
// Every count, length, offset and type id read from the file is checked against the file size
// before use; malformed files throw UsageError naming the file and the problem.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/ggml_quants.h"
#include "io/mapped_file.h"
#include "io/tensor_source.h"

namespace kvaudit::io {

// GGUF metadata value type ids.
enum class GgufValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;      // ggml order: ne[0] is the fastest-varying dimension
  uint64_t offset;              // relative to the start of the data section
  const uint8_t* data;          // into the mapping
  size_t nbytes;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
  }
};

class GgufFile : public TensorSource {
 public:
  static std::unique_ptr<GgufFile> open(const std::string& path);

  // Every key/value: integers as numbers, bools, strings (raw bytes, possibly invalid UTF-8:
  // dump() would throw on those, use get<std::string>()), arrays as JSON arrays.
  const nlohmann::json& metadata() const { return metadata_; }
  // The stored GGUF value type of a key (for arrays: ARRAY), throws UsageError when absent.
  GgufValueType value_type(const std::string& key) const;
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  // The tensor's info, or nullptr; a tensor found here counts as used.
  const GgufTensorInfo* find(const std::string& name) const;
  const std::string& path() const { return map_.path(); }
  // The tensors nothing has looked up yet, in file order (a loader's check that it read them all).
  std::vector<std::string> unused_tensors() const;

  // TensorSource: shape in PyTorch order (reversed ne), dtype = ggml type name.
  std::vector<std::string> names() const override;  // file order
  std::optional<TensorInfo> info(const std::string& name) const override;
  void read_f32(const std::string& name, std::span<float> out) const override;
  std::optional<RawTensor> raw(const std::string& name) const override;
  std::string describe() const override;

 private:
  explicit GgufFile(const std::string& path);
  void parse();

  MappedFile map_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  nlohmann::json metadata_ = nlohmann::json::object();
  std::unordered_map<std::string, GgufValueType> value_types_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::unique_ptr<std::atomic<bool>[]> used_;  // [tensors_.size()], set by find (loaders may run in threads)
};

}  // namespace kvaudit::io
