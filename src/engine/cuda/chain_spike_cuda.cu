// A measurement, not an engine path: what one dependent launch costs in a graph-captured chain of
// short launches, waited for by PDL's griddepcontrol.wait (the engine's edge) against a counter the
// previous launch's blocks raise after their writes and one thread of each block polls. A batch-1
// step is ~8 such edges a layer; if a counter edge is much cheaper, the small launches' edges could
// be counters (the kernels still wait before they end, so completions stay in order).
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "engine/cuda/chain_spike.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/pdl.cuh"

namespace kvaudit::engine::cuda {
namespace {

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Launch `step` of the chain: every block reads what another block of the launch before wrote and
// writes its own value. mode 0: PDL wait first. 1: counter, trigger first. 2: counter, trigger after
// the poll. 3: no wait at all (the launches' floor; its data check is not asserted).
__global__ void chain_step_kernel(const float* in, float* out, unsigned* counters, int step, int mode) {
  const unsigned blocks = gridDim.x;
  if (mode != 2) pdl_trigger();
  if (mode == 0) pdl_wait();
  if ((mode == 1 || mode == 2) && step > 0) {
    if (threadIdx.x == 0)
      while (ld_acquire(counters + step - 1) < blocks) {
      }
    __syncthreads();
  }
  if (mode == 2) pdl_trigger();
  const unsigned src = (blockIdx.x + 1) % blocks;
  const float v = in[src * blockDim.x + threadIdx.x];
  out[blockIdx.x * blockDim.x + threadIdx.x] = v + 1.0f;
  if (mode == 1 || mode == 2) {
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(counters + step, 1u);
    }
    pdl_wait();  // completions stay in order, as in the engine
  }
}

}  // namespace

ChainSpikeResult chain_spike(int mode, int blocks, int launches, int replays) {
  constexpr int kThreads = 256;
  const size_t n = size_t(blocks) * kThreads;
  DeviceBuffer<float> a(n), b(n);
  DeviceBuffer<unsigned> counters{static_cast<size_t>(launches)};
  cudaStream_t s;
  KVAUDIT_CUDA_CHECK(cudaStreamCreate(&s));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  {
    StreamScope scope(s);
    KVAUDIT_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    KVAUDIT_CUDA_CHECK(cudaMemsetAsync(a.data(), 0, n * sizeof(float), s));
    KVAUDIT_CUDA_CHECK(cudaMemsetAsync(counters.data(), 0, size_t(launches) * sizeof(unsigned), s));
    for (int i = 0; i < launches; ++i) {
      const float* in = i % 2 == 0 ? a.data() : b.data();
      float* out = i % 2 == 0 ? b.data() : a.data();
      launch_pdl(chain_step_kernel, dim3(blocks), dim3(kThreads), 0, in, out, counters.data(), i, mode);
    }
    KVAUDIT_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  }
  KVAUDIT_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  KVAUDIT_CUDA_CHECK(cudaGraphLaunch(exec, s));  // warm-up
  KVAUDIT_CUDA_CHECK(cudaStreamSynchronize(s));
  cudaEvent_t t0, t1;
  KVAUDIT_CUDA_CHECK(cudaEventCreate(&t0));
  KVAUDIT_CUDA_CHECK(cudaEventCreate(&t1));
  std::vector<float> per(static_cast<size_t>(replays));
  for (int r = 0; r < replays; ++r) {
    KVAUDIT_CUDA_CHECK(cudaEventRecord(t0, s));
    KVAUDIT_CUDA_CHECK(cudaGraphLaunch(exec, s));
    KVAUDIT_CUDA_CHECK(cudaEventRecord(t1, s));
    KVAUDIT_CUDA_CHECK(cudaEventSynchronize(t1));
    KVAUDIT_CUDA_CHECK(cudaEventElapsedTime(&per[size_t(r)], t0, t1));
  }
  std::vector<float> last(n);
  const float* result = launches % 2 == 0 ? a.data() : b.data();
  KVAUDIT_CUDA_CHECK(cudaMemcpy(last.data(), result, n * sizeof(float), cudaMemcpyDeviceToHost));
  ChainSpikeResult out;
  std::sort(per.begin(), per.end());
  out.us_per_launch = 1000.0 * per[per.size() / 2] / launches;
  out.data_ok = std::all_of(last.begin(), last.end(), [&](float v) { return v == float(launches); });
  KVAUDIT_CUDA_CHECK(cudaEventDestroy(t0));
  KVAUDIT_CUDA_CHECK(cudaEventDestroy(t1));
  KVAUDIT_CUDA_CHECK(cudaGraphExecDestroy(exec));
  KVAUDIT_CUDA_CHECK(cudaGraphDestroy(graph));
  KVAUDIT_CUDA_CHECK(cudaStreamDestroy(s));
  return out;
}

}  // namespace kvaudit::engine::cuda
