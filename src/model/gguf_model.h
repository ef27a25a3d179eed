// GGUF files as llama.cpp's convert_hf_to_gguf.py writes them: the config from metadata and the
// changes its converter makes to tensors, undone so the weights are the HF ones (SPEC.md §1).
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "io/gguf.h"
#include "model/model.h"

namespace kvaudit::model {

// HF model_type for a GGUF general.architecture; throws UsageError listing the supported ones.
std::string model_type_from_gguf_arch(const std::string& gguf_arch, const std::string& source);

// ModelConfig from metadata (<arch>.block_count, .embedding_length, ...) and the tensors
// (vocab = token_embd rows, tie = no output.weight, bias = attn_q.bias present, per-dim rope
// factors from rope_freqs / rope_factors_* tensors).
ModelConfig config_from_gguf(const io::GgufFile& f);

// The converter reorders each head's rows of q_proj/k_proj (and their biases) of llama models
// from HF's rotate-half layout (pair i with i + D/2) to ggml's interleaved pairs (2i, 2i+1):
// gguf row h*D + 2i + j = hf row h*D + j*D/2 + i for i < D/2, j in {0, 1}. This undoes it in
// place. w: [n_head * D, n_cols] row-major (n_cols = 1 for a bias).
void unpermute_gguf_qk_rows(std::span<float> w, int n_head, int64_t n_cols);
// The same permutation as a row order for WeightMatrix::reorder_rows: new row r = stored row order[r].
std::vector<int32_t> gguf_qk_row_order(int64_t n_rows, int n_head);

// Loads config and weights of a GGUF model (load_model's GGUF branch).
Model load_gguf_model(const std::string& path, const LoadOptions& opt);

}  // namespace kvaudit::model
