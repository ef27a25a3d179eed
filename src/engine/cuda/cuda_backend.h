// The CUDA backend (cuda/forward_cuda.cc): the forward pass of cpu/forward.cc on one GPU, fp32
// activations, fp32 or bf16 weights, KV caches quantized on the device where the scheme has a
// kv::KvLayout and through the host caches otherwise (docs/KV_SCHEMES.md "On the GPU"). Built only
// when CMake finds nvcc (KVAUDIT_HAVE_CUDA).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/engine.h"

namespace kvaudit::engine {

// CUDA devices visible now; 0 when there is none or no driver (never throws).
int cuda_device_count();

// Decode steps this process replayed as CUDA graphs (tests, the bench's report).
int64_t cuda_graph_replays();

// Throws UsageError when no device is present.
std::unique_ptr<Backend> make_cuda_backend(const model::Model& model, const BackendOptions& opt);

}  // namespace kvaudit::engine
