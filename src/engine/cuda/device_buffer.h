// An owned device allocation of n elements of T, moved not copied. Memory comes from the device's
// stream-ordered pool (cudaMallocAsync / cudaFreeAsync on the default stream, which the backend
// uses for every kernel): a KV cache that grows or a sequence that leaves the batch costs no
// device-wide synchronisation (cudaFree has one), and a free is ordered after the kernels that
// read the memory. Host <-> device copies are synchronous on the default stream, so a copy also
// orders after the kernels before it.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/cuda/cuda_check.h"

namespace kvaudit::engine::cuda {

// Counts every DeviceBuffer allocation and free in the process: a captured CUDA graph holds the
// device addresses its kernels were given, valid while this count has not moved (forward_cuda.cc).
uint64_t allocation_epoch();
void note_allocation();

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) { resize(n); }
  explicit DeviceBuffer(const std::vector<T>& host) { upload(host); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), cap_(std::exchange(o.cap_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
      cap_ = std::exchange(o.cap_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  size_t bytes() const { return cap_ * sizeof(T); }

  // Sets the size to n; the contents are undefined when it has to grow.
  void resize(size_t n) {
    if (n > cap_) {
      release();
      note_allocation();
      KVAUDIT_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p_), n * sizeof(T), cudaStreamLegacy));
      cap_ = n;
    }
    n_ = n;
  }
  // Sets the size to n keeping the first min(n, size()) elements; capacity at least doubles on
  // growth so that appending a row at a time stays amortised O(1).
  void resize_keep(size_t n) {
    if (n > cap_) {
      const size_t cap = std::max(n, 2 * cap_);
      T* q = nullptr;
      note_allocation();
      KVAUDIT_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&q), cap * sizeof(T), cudaStreamLegacy));
      if (n_ > 0)
        KVAUDIT_CUDA_CHECK(cudaMemcpyAsync(q, p_, n_ * sizeof(T), cudaMemcpyDeviceToDevice, cudaStreamLegacy));
      release();
      p_ = q;
      cap_ = cap;
    }
    n_ = n;
  }
  void upload(const std::vector<T>& host) { upload(host.data(), host.size()); }
  void upload(const T* host, size_t n) {
    resize(n);
    if (n > 0) KVAUDIT_CUDA_CHECK(cudaMemcpy(p_, host, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    if (n_ > 0) KVAUDIT_CUDA_CHECK(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  void release() {
    if (p_) {
      note_allocation();
      cudaFreeAsync(p_, cudaStreamLegacy);  // never throws from a destructor; nothing to recover
    }
    p_ = nullptr;
    n_ = cap_ = 0;
  }
  T* p_ = nullptr;
  size_t n_ = 0;    // elements in use
  size_t cap_ = 0;  // elements allocated
};

// Keeps the memory freed into the default pool for reuse (by default the pool returns it to the
// driver at every synchronisation, and each decode step synchronises). Once per process.
void keep_pool_memory();

// Page-locked host memory (cudaMallocHost) for the per-layer transfers: a copy from or to it is
// one DMA with no staging through a driver buffer, several times faster for small transfers than
// from pageable memory. Grows, never shrinks; contents are undefined after a growing resize.
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() {
    if (p_) cudaFreeHost(p_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  T* data() { return p_; }
  size_t size() const { return n_; }
  void resize(size_t n) {
    if (n > cap_) {
      if (p_) cudaFreeHost(p_);
      p_ = nullptr;
      cap_ = 0;
      KVAUDIT_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&p_), n * sizeof(T)));
      cap_ = n;
    }
    n_ = n;
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0, cap_ = 0;
};

}  // namespace kvaudit::engine::cuda
