// Weights that hold a NaN or an infinity (a corrupt download, a converter that overflowed fp16):
// the forward pass would turn every logit into NaN and greedy decoding would pick token 0 without
// a word, so the loaders refuse such a file, naming the tensor (llama.cpp checks the same with
// --check-tensors).
#pragma once
#include <optional>
#include <string>

#include "model/model.h"
#include "model/weight_loader.h"

namespace kvaudit::model {

// The first tensor (in weight_parts order) with a value that is not finite, as
// "'blk.3.attn_q.weight' (row 17)"; nullopt when every value is finite. Floats are checked value by
// value; quantized blocks by their fp16 scales (a block's values are finite when its scales are),
// other encodings by dequantizing each row. Runs on hardware_concurrency() threads.
std::optional<std::string> first_non_finite_tensor(const ModelConfig& c, const ArchSpec& a, Weights& w,
                                                   const TensorNames& names);

// Throws UsageError naming m.path and the tensor when first_non_finite_tensor finds one.
void refuse_non_finite(Model& m, const TensorNames& names);

}  // namespace kvaudit::model
