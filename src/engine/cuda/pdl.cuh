// Programmatic dependent launch (Hopper, sm_90+). A decode step of a small batch is a chain of ~13
// short launches a layer, and each one waits for the previous grid to drain before its own blocks
// are scheduled. Launched with launch_pdl, a kernel may be scheduled while the previous grid still
// runs; it must call pdl_wait() before it reads or writes any memory a kernel writes: that returns
// once the previous grid has finished and its writes are visible, so nothing it computes changes
// (before it, a kernel reads only what no launch of this call writes: weights, the call's tables,
// and, in attention, cache rows that earlier calls wrote: each call's tables go up by a synchronous
// copy, after every kernel of the call before has finished).
// pdl_trigger() lets the next PDL launch be scheduled early; every kernel calls it first,
// before its own wait, so the next grid's blocks can take their SMs (and start what needs no
// memory of this one, as the streaming products' first weight slabs) while this grid still waits or
// runs. That is safe: the next grid's pdl_wait returns only once this grid has finished, and this
// grid finishes only after its own wait returned (every block of every kernel waits before it
// ends), so the order of the chain holds transitively; and the next grid is scheduled only once
// all of this grid's blocks have started, so waiting blocks never hold SMs this grid still needs.
// KVAUDIT_CUDA_PDL=0 turns it off.
#pragma once
#include <cuda_runtime.h>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/timeline.h"

namespace kvaudit::engine::cuda {

#ifdef KVAUDIT_CUDA_TIMELINE
// The measurement build's records (timeline.h): this file's copy of the buffer's address and of its
// index, bound at the backend's start; thread 0 of each block writes one record at each call.
namespace {
__device__ TimelineHeader* tl_buf = nullptr;
__device__ unsigned tl_file = 0;
void tl_bind(void* buffer, unsigned index) {
  auto* b = static_cast<TimelineHeader*>(buffer);
  KVAUDIT_CUDA_CHECK(cudaMemcpyToSymbol(tl_buf, &b, sizeof b));
  KVAUDIT_CUDA_CHECK(cudaMemcpyToSymbol(tl_file, &index, sizeof index));
}
[[maybe_unused]] const bool tl_registered = (timeline_register(tl_bind, __BASE_FILE__), true);
}  // namespace
__device__ __forceinline__ uint64_t tl_now() {
  uint64_t ns;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(ns));
  return ns;
}
// n records of `kind` at the given times and lines, one atomic for all.
__device__ __forceinline__ void tl_write(unsigned kind, const uint64_t* ns, const unsigned* lines, int n) {
  TimelineHeader* b = tl_buf;
  if (b == nullptr || n == 0 || threadIdx.x + threadIdx.y + threadIdx.z != 0) return;
  unsigned sm;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
  sm %= kTimelineSms;
  const unsigned long long i0 = atomicAdd(&b->count[sm], static_cast<unsigned long long>(n));
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  for (int j = 0; j < n; ++j) {
    auto* ev = reinterpret_cast<TimelineEvent*>(b + 1) + sm * b->per_sm + (i0 + j) % b->per_sm;
    *ev = TimelineEvent{ns[j], tl_file << 16 | lines[j], block, gridDim.x * gridDim.y * gridDim.z, kind | sm << 8};
  }
}
__device__ __forceinline__ void tl_record(unsigned kind, unsigned line) {
  const uint64_t ns = tl_now();
  tl_write(kind, &ns, &line, 1);
}
#endif

// Phase marks inside a kernel (kind 2; the timeline build only, nothing otherwise): thread 0 of each
// block keeps the times and writes them all at flush(), so a mark costs no round trip to memory
// mid-kernel (a record's atomic would add one to the phase it measures).
struct TlMarks {
#ifdef KVAUDIT_CUDA_TIMELINE
  static constexpr int kMax = 12;
  uint64_t ns[kMax];
  unsigned line[kMax];
  int n = 0;
  __device__ __forceinline__ void mark(unsigned at = __builtin_LINE()) {
    if (n < kMax) {
      ns[n] = tl_now();
      line[n++] = at;
    }
  }
  __device__ __forceinline__ void flush() { tl_write(2, ns, line, n); }
#else
  __device__ __forceinline__ void mark(unsigned = 0) {}
  __device__ __forceinline__ void flush() {}
#endif
};

// `line`: the caller's, which the timeline build records (a kernel's calls name it); unused otherwise.
__device__ __forceinline__ void pdl_wait(unsigned line = __builtin_LINE()) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
#ifdef KVAUDIT_CUDA_TIMELINE
  tl_record(1, line);
#endif
}

__device__ __forceinline__ void pdl_trigger(unsigned line = __builtin_LINE()) {
#ifdef KVAUDIT_CUDA_TIMELINE
  tl_record(0, line);
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// kernel<<<grid, block, smem, stream()>>>(args...), with the programmatic-serialization attribute
// where pdl_on() (cuda_check.h) and the stream is the backend's own (the one its decode graphs are
// captured on; the legacy stream, which the ops' tests and eager calls use, keeps plain launches).
// The launch is checked.
template <typename... Params, typename... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, Args&&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream();
  cfg.attrs = attr;
  cfg.numAttrs = pdl_on() && stream() != nullptr ? 1 : 0;
  KVAUDIT_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...));
}

}  // namespace kvaudit::engine::cuda
