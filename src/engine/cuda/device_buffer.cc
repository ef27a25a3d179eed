#include "engine/cuda/device_buffer.h"

#include <cstdint>

namespace kvaudit::engine::cuda {

void keep_pool_memory() {
  static const bool done = [] {
    int dev = 0;
    KVAUDIT_CUDA_CHECK(cudaGetDevice(&dev));
    cudaMemPool_t pool;
    KVAUDIT_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
    uint64_t keep = UINT64_MAX;
    KVAUDIT_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    return true;
  }();
  (void)done;
}

}  // namespace kvaudit::engine::cuda
