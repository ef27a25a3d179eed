// NumPy .npy files, float32 little-endian C order only (SPEC.md §3: `kvaudit kv --in/--out`).
// Reads format versions 1.0 and 2.0, writes 1.0.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kvaudit::io {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major, product(shape) values
};

// Throws UsageError naming the file for a bad magic/header, a dtype other than '<f4',
// fortran_order True, or data shorter/longer than the shape says.
NpyArray read_npy(const std::string& path);

// Writes atomically; throws UsageError when data.size() != product(shape).
void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const float> data);

}  // namespace kvaudit::io
