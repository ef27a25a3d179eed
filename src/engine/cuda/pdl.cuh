// Programmatic dependent launch (Hopper, sm_90+). A decode step of a small batch is a chain of ~13
// short launches a layer, and each one waits for the previous grid to drain before its own blocks
// are scheduled. Launched with launch_pdl, a kernel may be scheduled while the previous grid still
// runs; it must call pdl_wait() before it reads or writes any memory a kernel writes: that returns
// once the previous grid has finished and its writes are visible, so nothing it computes changes
// (before it, a kernel reads only what no kernel writes: weights, the call's tables).
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

namespace kvaudit::engine::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
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
