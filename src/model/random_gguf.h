// --random-weights with a stored type (issue 14): a model of config.json's shapes whose matrices
// are random blocks of a GGUF type ("q4_k_m", "q4_1", "f16", ...), written per block with no
// quantizer (model/random_weights.h random_blocks) through the project's GGUF writer to a
// temporary file that is mapped and unlinked, so an 8B-shaped Q4_K_M model can be loaded and run
// without downloading one (and its disk space returns when the process exits).
#pragma once
#include <cstdint>
#include <string>

#include "model/model.h"
#include "model/weight_parts.h"

namespace kvaudit::model {

// The stored type of a matrix for a type name: "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1",
// "q5_0", "q5_1", "q2_k" .. "q6_k" give every matrix that type; "q4_k_m" mixes them as llama.cpp's
// Q4_K_M does (Q6_K for the output and for attn_v / ffn_down of the first and last eighth of the
// layers and every third one between, Q4_K elsewhere). A matrix whose width is not a multiple of
// the type's block is stored as F16. Throws UsageError naming the type when it is unknown.
io::GgmlType random_matrix_type(const std::string& type, Part part, int layer, int n_layers, int64_t cols);

// Writes the GGUF under std::filesystem::temp_directory_path() ($TMPDIR), maps it, unlinks it and
// loads it; the returned model's matrices point into that mapping, or with expand_f32 are decoded to
// fp32 at load (LoadOptions::expand_f32, as for a GGUF file).
Model load_random_typed(const ModelConfig& c, const ArchSpec& a, const std::string& type, uint64_t seed,
                        const std::string& source, bool expand_f32 = false);

}  // namespace kvaudit::model
