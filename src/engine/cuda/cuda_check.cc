#include "engine/cuda/cuda_check.h"

#include "core/error.h"

#include <cstdlib>

namespace kvaudit::engine::cuda {

void throw_cuda_error(cudaError_t err, const char* file, int line, const char* call) {
  runtime_error("CUDA error at {}:{}: {} ({})", file, line, cudaGetErrorString(err), call);
}

void throw_runtime(const std::string& message) { throw std::runtime_error(message); }

void throw_usage(const std::string& message) { usage_error("{}", message); }

bool env_flag(const char* name, bool unset) {
  const char* env = std::getenv(name);
  if (env == nullptr || *env == '\0') return unset;
  const std::string e = env;
  if (e != "0" && e != "1") usage_error("{}: '{}' is not 0 or 1", name, e);
  return e == "1";
}

const DeviceLimits& device_limits() {
  static const DeviceLimits limits = [] {
    int dev = 0, sms = 0, smem = 0, l2 = 0;
    KVAUDIT_CUDA_CHECK(cudaGetDevice(&dev));
    KVAUDIT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    KVAUDIT_CUDA_CHECK(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    KVAUDIT_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    return DeviceLimits{sms, smem, int64_t(l2)};
  }();
  return limits;
}

bool pdl_on() {
  static const bool on = [] {
    if (!env_flag("KVAUDIT_CUDA_PDL", true)) return false;
    int dev = 0, major = 0;
    KVAUDIT_CUDA_CHECK(cudaGetDevice(&dev));
    KVAUDIT_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    return major >= 9;
  }();
  return on;
}

namespace {
thread_local cudaStream_t current_stream = nullptr;  // the legacy default stream
}  // namespace

cudaStream_t stream() { return current_stream; }

StreamScope::StreamScope(cudaStream_t s) : prev_(current_stream) { current_stream = s; }

StreamScope::~StreamScope() { current_stream = prev_; }

}  // namespace kvaudit::engine::cuda
