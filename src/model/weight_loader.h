// Reads the tensors weight_parts() lists from a TensorSource, checking every name and shape, and
// splits fused tensors (phi3 qkv_proj, gate_up_proj). Format-neutral: names come from the caller.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "io/tensor_source.h"
#include "model/weight_parts.h"

namespace kvaudit::model {

struct TensorNames {
  std::function<std::string(Part, int)> name;
  std::function<std::string(int)> fused_qkv;      // used when ArchSpec::fused_qkv
  std::function<std::string(int)> fused_gate_up;  // used when ArchSpec::fused_gate_up
};

// How matrices are held. With `keep` set (the source, alive as long as a matrix points into it)
// and expand_f32 off, a matrix whose stored encoding the engine reads (TensorSource::raw) stays as
// stored, pointing into the source's mapping; otherwise it is converted to owned fp32 (the
// fp32-expanded path: LoadOptions::expand_f32). Vectors (norms, biases) are always fp32.
struct MatrixStorage {
  std::shared_ptr<const io::TensorSource> keep;
  bool expand_f32 = false;
};

// Throws UsageError naming the source and tensor for a missing tensor or a wrong shape (checked
// for every tensor before any is converted). Tensors are converted on hardware_concurrency()
// threads, calling src.read_f32 concurrently (the io readers are const and stateless).
void load_weights(const io::TensorSource& src, const ModelConfig& c, const ArchSpec& a,
                  const TensorNames& names, Weights& w, const MatrixStorage& storage = {});

// Reads `name` into dst after checking its shape is `shape` (PyTorch order).
void read_tensor(const io::TensorSource& src, const std::string& name, const std::vector<int64_t>& shape,
                 std::vector<float>& dst);

// "[3, 4]"
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace kvaudit::model
