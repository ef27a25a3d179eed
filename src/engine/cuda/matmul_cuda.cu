// y = x @ w.T on the device (ops_cuda.h), a shared-memory tiled kernel with one fixed reduction
// order that depends on k alone (batch invariance): k is cut into kchunks(k) chunks of kchunk_len(k)
// columns; each chunk's partial sum is one fmaf chain from 0 over its columns in order, and the
// partials are added left to right. The split is the same for 1 row or 4,096, so tiling and the
// number of rows change which thread computes an output, never its bits; the split only exists so
// that a decode step (few rows) still has enough blocks and short enough chains to fill the GPU.
// Products that share x (q/k/v, gate/up) run in one launch, and the chunks' partials are added
// by the last block of each tile rather than by a second kernel: a decode step is launch-bound.
// Tiles: BM rows of x by 64 rows of w, k in steps of BK (16 for 64-row tiles; 64 for the 16-row
// tiles of a decode step, whose time is the chain of tile loads: 4x fewer, 4x larger loads);
// 256 threads, each TM = BM/16 rows by 4 columns (rows ty + 16*i, columns tx + 16*j, so
// shared-memory reads of a warp are conflict-free). Columns past a chunk's end are never
// multiplied (not even as zeros), so every variant runs exactly the same FMA chain.
#include <cuda_bf16.h>

#include <algorithm>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

constexpr int kBN = 64, kBK = 16, kThreads = 256;  // kBK: chunk lengths are multiples of it
constexpr int64_t kMaxChunks = 16;      // partial sums per output
constexpr int64_t kMinChunkLen = 128;   // columns per chunk at least (short k: fewer chunks)
// Scratch for the partial sums is bounded by running rows in passes (rows never interact).
constexpr int64_t kMaxPartialFloats = int64_t(64) << 20;

int64_t kchunks(int64_t k) { return std::min(kMaxChunks, (k + kMinChunkLen - 1) / kMinChunkLen); }
// Columns per chunk, a multiple of the k tile (the last chunk may be shorter).
int64_t kchunk_len(int64_t k) {
  const int64_t c = kchunks(k);
  return ((k + c - 1) / c + kBK - 1) / kBK * kBK;
}

__device__ inline float load_w(const float* w, int64_t i) { return w[i]; }
__device__ inline float load_w(const __nv_bfloat16* w, int64_t i) { return __bfloat162float(w[i]); }

// One product of a launch: y = x @ w.T with w [m, k]; column tiles tile0 .. tile0 + ceil(m/64) - 1
// of the launch's grid.x are this product's.
template <typename W>
struct Job {
  const W* w;
  int64_t m;
  float* y;        // [n, m]
  float* partial;  // [chunks, n, m] when chunks > 1
  int tile0;
};

constexpr int kMaxJobs = 3;  // q/k/v share their input (gate/up: 2)

template <typename W>
struct Jobs {
  Job<W> job[kMaxJobs];
  int count;
};

// Block (x, y, z): column tile x of some job, rows y*BM.., chunk z of k. With one chunk it writes y;
// otherwise its partial sums, and the last block of the tile to finish (an atomic count per tile,
// reset by that block) adds the chunks' partials in chunk order:
//   y = ((p[0] + p[1]) + p[2]) + ...
// which fixes the order whichever block finishes last.
template <int BM, int BK, typename W>
__global__ void __launch_bounds__(kThreads) matmul_kernel(const float* __restrict__ x, int64_t n, int64_t k,
                                                          Jobs<W> jobs, int64_t chunk_len, unsigned* counters) {
  constexpr int TM = BM / 16;
  __shared__ float xs[BK][BM + 1];   // [k in tile][row]
  __shared__ float ws[BK][kBN + 1];  // [k in tile][column]
  __shared__ bool last;
  int j = 0;
  while (j + 1 < jobs.count && int(blockIdx.x) >= jobs.job[j + 1].tile0) ++j;
  const Job<W> job = jobs.job[j];
  const W* __restrict__ w = job.w;
  const int64_t m = job.m;
  const int chunks = int(gridDim.z);
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t row0 = int64_t(blockIdx.y) * BM, col0 = int64_t(int(blockIdx.x) - job.tile0) * kBN;
  float acc[TM][4] = {};
  const int64_t k_begin = int64_t(blockIdx.z) * chunk_len, k_end = min(k, k_begin + chunk_len);
  for (int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
    // Zero-fill past the edges (rows past n, columns past m): never read into a written output.
    // Loads first, into registers, with trip counts known at compile time, so that all of a
    // thread's loads are in flight at once; then the stores to shared memory.
    constexpr int kXPer = BM * BK / kThreads, kWPer = kBN * BK / kThreads;
    static_assert(kXPer * kThreads == BM * BK && kWPer * kThreads == kBN * BK, "tile not a multiple of the block");
    float xv[kXPer], wv[kWPer];
#pragma unroll
    for (int i = 0; i < kXPer; ++i) {
      const int e = tid + i * kThreads, r = e / BK, c = e % BK;
      const int64_t gr = row0 + r, gc = k0 + c;
      xv[i] = (gr < n && gc < k_end) ? x[gr * k + gc] : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < kWPer; ++i) {
      const int e = tid + i * kThreads, r = e / BK, c = e % BK;
      const int64_t gr = col0 + r, gc = k0 + c;
      wv[i] = (gr < m && gc < k_end) ? load_w(w, gr * k + gc) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < kXPer; ++i) {
      const int e = tid + i * kThreads;
      xs[e % BK][e / BK] = xv[i];
    }
#pragma unroll
    for (int i = 0; i < kWPer; ++i) {
      const int e = tid + i * kThreads;
      ws[e % BK][e / BK] = wv[i];
    }
    __syncthreads();
    const int64_t valid = k_end - k0;  // columns of this tile inside the chunk
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      if (kk >= valid) break;
      float a[TM], b[4];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = xs[kk][ty + 16 * i];
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) b[jj] = ws[kk][tx + 16 * jj];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) acc[i][jj] = fmaf(a[i], b[jj], acc[i][jj]);
    }
    __syncthreads();
  }
  float* out = chunks == 1 ? job.y : job.partial + int64_t(blockIdx.z) * n * m;
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t r = row0 + ty + 16 * i;
    if (r >= n) continue;
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      const int64_t c = col0 + tx + 16 * jj;
      if (c < m) out[r * m + c] = acc[i][jj];
    }
  }
  if (chunks == 1) return;
  __threadfence();  // this block's partials visible device-wide before it counts itself done
  __syncthreads();
  unsigned* counter = counters + int64_t(blockIdx.y) * gridDim.x + blockIdx.x;
  if (tid == 0) last = atomicAdd(counter, 1u) == unsigned(chunks - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  for (int e = tid; e < BM * kBN; e += kThreads) {
    const int64_t r = row0 + e / kBN, c = col0 + e % kBN;
    if (r >= n || c >= m) continue;
    const int64_t i = r * m + c;
    float sum = __ldcg(job.partial + i);  // L2, never a stale L1 line
    for (int z = 1; z < chunks; ++z) sum = __fadd_rn(sum, __ldcg(job.partial + int64_t(z) * n * m + i));
    job.y[i] = sum;
  }
  if (tid == 0) *counter = 0;  // ready for the next launch
}

template <typename W>
void dispatch(const float* x, int64_t n, int64_t k, std::span<const MatmulOutput> outs) {
  // Scratch shared by every backend of the process: one host thread drives the device (the
  // engine's contract), and all launches go to the default stream, so uses never overlap.
  static DeviceBuffer<float> partials;   // [sum over jobs of chunks * rows of a pass * m]
  static DeviceBuffer<unsigned> counters;  // one per output tile of a pass, zero between launches
  const int64_t chunks = kchunks(k);
  int64_t m_total = 0, tiles_x = 0;
  for (const MatmulOutput& o : outs) {
    m_total += o.m;
    tiles_x += (o.m + kBN - 1) / kBN;
  }
  // Rows per pass: as many as the scratch bound allows (at least one 64-row tile).
  const int64_t pass = chunks == 1 ? n : std::max<int64_t>(64, kMaxPartialFloats / (chunks * m_total));
  for (int64_t r0 = 0; r0 < n; r0 += pass) {
    const int64_t rows = std::min(pass, n - r0);
    const int bm = rows <= 16 ? 16 : 64;  // few rows (decode): 16-row tiles waste less; same values
    const int64_t tiles_y = (rows + bm - 1) / bm;
    if (chunks > 1) {
      partials.resize(size_t(chunks * rows * m_total));
      if (counters.size() < size_t(tiles_x * tiles_y)) {
        counters.resize(size_t(tiles_x * tiles_y));
        KVAUDIT_CUDA_CHECK(cudaMemset(counters.data(), 0, counters.size() * sizeof(unsigned)));
      }
    }
    Jobs<W> jobs{};
    jobs.count = int(outs.size());
    int tile = 0;
    int64_t p_off = 0;
    for (size_t i = 0; i < outs.size(); ++i) {
      jobs.job[i] = {static_cast<const W*>(outs[i].w), outs[i].m, outs[i].y + r0 * outs[i].m,
                     partials.data() + p_off, tile};
      tile += int((outs[i].m + kBN - 1) / kBN);
      p_off += chunks * rows * outs[i].m;
    }
    const dim3 grid{unsigned(tiles_x), unsigned(tiles_y), unsigned(chunks)};
    if (bm == 16)
      matmul_kernel<16, 64, W><<<grid, kThreads, 0, stream()>>>(x + r0 * k, rows, k, jobs, kchunk_len(k), counters.data());
    else
      matmul_kernel<64, 16, W><<<grid, kThreads, 0, stream()>>>(x + r0 * k, rows, k, jobs, kchunk_len(k), counters.data());
    KVAUDIT_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

void matmul_many_cuda(const float* x, int64_t n, int64_t k, WeightType wt, std::span<const MatmulOutput> outs) {
  if (n == 0 || outs.empty()) return;
  if (outs.size() > size_t(kMaxJobs)) throw_runtime("matmul_many_cuda: more than 3 products in one launch");
  if (wt == WeightType::kBf16Tc)
    tc_matmul_many_cuda(x, n, k, outs);
  else if (wt == WeightType::kBf16Lt || wt == WeightType::kBf16LtFast)
    lt_matmul_many_cuda(x, n, k, outs, wt == WeightType::kBf16Lt);
  else if (wt == WeightType::kF32)
    dispatch<float>(x, n, k, outs);
  else
    dispatch<__nv_bfloat16>(x, n, k, outs);
}

void matmul_cuda(const float* x, int64_t n, int64_t k, const void* w, WeightType wt, int64_t m, float* y) {
  if (m == 0) return;
  const MatmulOutput out{w, m, y};
  matmul_many_cuda(x, n, k, wt, {&out, 1});
}

}  // namespace kvaudit::engine::cuda
