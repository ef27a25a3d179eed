// Every CUDA runtime call goes through KVAUDIT_CUDA_CHECK, which throws std::runtime_error (exit 1)
// naming the call's file:line and CUDA's message (STYLE.md §2, Errors). Kernel launches are
// checked with KVAUDIT_CUDA_CHECK(cudaGetLastError()) right after the launch.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace kvaudit::engine::cuda {
// Throws std::runtime_error "CUDA error at file:line: message (call)" (cuda_check.cc: host code,
// so that fmt's compile-time format checks stay out of nvcc's way).
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* file, int line, const char* call);
// Throws std::runtime_error(message), for limits the .cu files check.
[[noreturn]] void throw_runtime(const std::string& message);
// A bad setting (core/error.h's usage_error: exit status 2), for the .cu files that do not include fmt.
[[noreturn]] void throw_usage(const std::string& message);

// A 0/1 switch of the environment (the engine's A/Bs): `unset` where it is unset or empty; any
// other value than 0 or 1 is a usage error naming it.
bool env_flag(const char* name, bool unset);

// What the kernels' launch shapes depend on, read from the current device once per process (one
// device a process).
struct DeviceLimits {
  int sms;              // multiprocessors
  int smem_optin;       // shared memory a block may opt into, bytes
  int64_t l2_bytes;     // L2 cache size
};
const DeviceLimits& device_limits();

// Whether kernels go out as programmatic dependent launches (pdl.cuh): a device of compute
// capability 9.0 or later, unless KVAUDIT_CUDA_PDL=0.
bool pdl_on();

// The stream every kernel, cuBLASLt product and asynchronous copy of the engine goes to: the legacy
// default stream (0), unless a StreamScope names another, as the backend does with its own
// blocking stream so that a decode step can be captured as a CUDA graph (the legacy stream cannot
// be captured). A blocking stream orders with the legacy one, so the synchronous copies and the
// stream-ordered allocations (device_buffer.h) stay in order with the kernels either way.
cudaStream_t stream();
class StreamScope {
 public:
  explicit StreamScope(cudaStream_t s);
  ~StreamScope();
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  cudaStream_t prev_;
};
}  // namespace kvaudit::engine::cuda

#define KVAUDIT_CUDA_CHECK(call)                                                           \
  do {                                                                                     \
    const cudaError_t kvaudit_err_ = (call);                                               \
    if (kvaudit_err_ != cudaSuccess)                                                       \
      ::kvaudit::engine::cuda::throw_cuda_error(kvaudit_err_, __FILE__, __LINE__, #call);  \
  } while (0)
