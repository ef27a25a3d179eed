#include "engine/cuda/device_buffer.h"

#include <atomic>
#include <cstdint>

namespace kvaudit::engine::cuda {

namespace {
std::atomic<uint64_t> allocations{0};
}  // namespace

uint64_t allocation_epoch() { return allocations.load(std::memory_order_relaxed); }

void note_allocation() { allocations.fetch_add(1, std::memory_order_relaxed); }

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
