// A loaded model: config, architecture spec and weights as the file stores them (SPEC.md §1).
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
  // With random_weights: the matrices' stored type ("q4_k_m", "q4_1", "f16", ... model/random_gguf.h),
  // written to a temporary GGUF and mapped; empty: fp32 in memory as above.
  std::string random_type;
  // Expand every weight matrix to fp32 at load, as kvaudit did before issue 14 (the reference the
  // tests compare the stored-format path with, and the benchmark's baseline). Off: matrices stay in
  // the file's encoding, memory-mapped (model/weight.h).
  bool expand_f32 = false;
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
