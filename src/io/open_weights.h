// Picks the reader for --model (SPEC.md §1).
#pragma once
#include <memory>
#include <string>

#include "io/tensor_source.h"

namespace kvaudit::io {

// A directory -> SafetensorsSource (model.safetensors or model.safetensors.index.json),
// *.gguf -> GgufFile, *.safetensors -> SafetensorsSource; anything else throws UsageError.
std::unique_ptr<TensorSource> open_weights(const std::string& path);

}  // namespace kvaudit::io
