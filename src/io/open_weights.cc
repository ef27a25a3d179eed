#include "io/open_weights.h"

#include <filesystem>

#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace kvaudit::io {

std::unique_ptr<TensorSource> open_weights(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return SafetensorsSource::open(path);
  if (!fs::exists(path, ec)) usage_error("--model {}: no such file or directory", path);
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".gguf") return GgufFile::open(path);
  if (ext == ".safetensors") return SafetensorsSource::open(path);
  usage_error("--model {}: expected a directory, a .gguf file or a .safetensors file", path);
}

}  // namespace kvaudit::io
