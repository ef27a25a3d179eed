// The CUDA backend (cuda/forward_cuda.cc): the forward pass of cpu/forward.cc on one GPU, fp32
// activations, fp32 or bf16 weights, the KV quantizers run by the host caches (see PERFORMANCE.md,
// CUDA). Built only when CMake finds nvcc (KVAUDIT_HAVE_CUDA).
#pragma once
#include <memory>

#include "engine/engine.h"

namespace kvaudit::engine {

// CUDA devices visible now; 0 when there is none or no driver (never throws).
int cuda_device_count();

// Throws UsageError when no device is present.
std::unique_ptr<Backend> make_cuda_backend(const model::Model& model, const BackendOptions& opt);

}  // namespace kvaudit::engine
