// A loaded model: config, architecture spec and fp32 weights (SPEC.md §1).
//   Model m = load_model("dir-or.gguf", {});
//   m.config.n_layers, m.arch.qk_norm, m.weights.layers[l].wq ...
#pragma once
#include <cstdint>
#include <string>

#include "model/arch.h"
#include "model/config.h"
#include "model/weights.h"

namespace kvaudit::model {

struct LoadOptions {
  // SPEC.md §1 --random-weights: read config.json only, fill deterministic random weights of the
  // real shapes (linear ~ U(-1,1)/sqrt(fan_in), norms ~ 1 +- small, biases small).
  bool random_weights = false;
  uint64_t seed = 0;
  // sha256 of the weight files for the results' model record (SPEC.md §6); costs seconds per GB.
  bool compute_sha256 = true;
};

struct Model {
  ModelConfig config;
  ArchSpec arch;    // the registry's spec, adjusted for the file (e.g. act from config, GGUF norms)
  Weights weights;
  std::string path;            // as given
  std::string weights_sha256;  // hex; "" when not computed; "random:<seed>" for random weights
  int64_t n_params = 0;        // every weight element (lm_head counted once when tied)
  std::string weights_dtype;   // dtype of the embedding tensor in the file ("BF16", "Q4_1", ...; "random")
};

// Loads `path`: an HF directory (config.json + model.safetensors or a sharded index) or a .gguf
// file. Throws UsageError naming the file and the tensor/key for a missing or mis-shaped weight,
// an inconsistent config or an unsupported architecture.
Model load_model(const std::string& path, const LoadOptions& opt = {});

}  // namespace kvaudit::model
