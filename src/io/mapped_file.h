// A read-only memory map of a whole file; the weight readers keep one alive for their lifetime.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace kvaudit::io {

class MappedFile {
 public:
  // Throws UsageError naming the path when it is missing, a directory or cannot be mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kvaudit::io
