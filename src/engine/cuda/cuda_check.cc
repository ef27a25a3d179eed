#include "engine/cuda/cuda_check.h"

#include "core/error.h"

namespace kvaudit::engine::cuda {

void throw_cuda_error(cudaError_t err, const char* file, int line, const char* call) {
  runtime_error("CUDA error at {}:{}: {} ({})", file, line, cudaGetErrorString(err), call);
}

void throw_runtime(const std::string& message) { throw std::runtime_error(message); }

void throw_usage(const std::string& message) { usage_error("{}", message); }

}  // namespace kvaudit::engine::cuda
