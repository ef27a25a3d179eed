// The parsers read files by path (they map or stream them), so each fuzz input is written to a file
// in a per-process scratch directory first. Shared by the fuzz/*_fuzz.cc targets.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/tensor_source.h"

namespace kvaudit::fuzz {

// <tmp>/kvaudit_fuzz_<pid>/, created on first use and removed at exit (a crash leaves it behind).
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() : path(std::filesystem::temp_directory_path() / ("kvaudit_fuzz_" + std::to_string(getpid()))) {
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline const std::filesystem::path& scratch_dir() {
  static const ScratchDir dir;
  return dir.path;
}

// Writes bytes to scratch_dir()/name (replacing it) and returns the path.
inline std::string write_input(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = (scratch_dir() / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return path;
}

inline std::string write_input(const std::string& name, const std::string& bytes) {
  return write_input(name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// Reads every tensor of an opened weight file as floats. names() and info() must agree (else abort);
// a tensor whose dtype cannot be read as weights may throw UsageError unless must_read.
inline void read_every_tensor(const io::TensorSource& src, bool must_read) {
  std::vector<float> buf;
  for (const auto& name : src.names()) {
    const auto info = src.info(name);
    if (!info) std::abort();
    buf.assign(size_t(info->numel()), 0.f);  // bounded: the file holds every tensor's bytes
    try {
      src.read_f32(name, buf);
    } catch (const UsageError&) {
      if (must_read) throw;
    }
  }
}

}  // namespace kvaudit::fuzz
