// SHA-256 (FIPS 180-4) of bytes and files, for the results' model record (SPEC.md §6).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kvaudit::model {

class Sha256 {
 public:
  // portable: never use the CPU's SHA extensions (tests compare both paths).
  explicit Sha256(bool portable = false);
  void update(const uint8_t* data, size_t n);
  // Lowercase hex digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void blocks(const uint8_t* p, size_t n_blocks);  // 64-byte blocks
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
  bool portable_;
};

std::string sha256_hex(const std::string& bytes);
// The digest of the files' bytes concatenated in the given order (one file: `sha256sum FILE`).
// Cached per process by (path, size, mtime). Throws UsageError naming an unreadable file.
std::string sha256_files(const std::vector<std::string>& paths);

}  // namespace kvaudit::model
