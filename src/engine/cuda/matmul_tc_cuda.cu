// y = x @ w.T on tensor cores (ops_cuda.h, WeightType::kBf16Tc): w bf16, x carried as a pair of
// bf16 (hi = bf16(x), lo = bf16(x - hi): 16 significant bits, so the error is the weights' rounding
// alone, as in the fp32-activation bf16 path), products and sums in fp32 by mma (WMMA 16x16x16).
// Each 16-wide step of k takes hi then lo; rounding x itself to bf16 as well pushed the transformers
// fixtures past the bf16 tolerance (2.07e-2 on llama3).
//
// Batch invariance with a split of k fixed by k alone: k is cut into chunks of kChunk (1024), each
// output's chunk partial is ONE accumulator that takes the chunk's mma steps in order from 0, and
// the output is +0 plus the partials in chunk order (fp32 adds). Whatever tile an output sits in,
// the arithmetic is that: the tile shape only decides which warp owns an output and where it sits
// in its 16x16 fragment, and an mma computes each element of its tile from that element's row of
// A, column of B and accumulator alone, so the bits are the same for 1 row or 10,000 (tests/cuda
// checks rows alone against rows in a batch, over every tile shape). The prefill tiles fold the
// partials in registers as they go; the decode tiles (few rows: the step is a read of the weights)
// give each chunk its own block, so that a 2048-wide projection streams through 2x the blocks, and
// add the partials in a second launch in the same order. Each batch size takes its own tile shape:
// decode narrow column strips through a deep cp.async pipeline, prefill wide square tiles (the
// step is tensor-core bound). k must be a multiple of 8 (16-byte rows for cp.async); the k tail of
// the last 32/64-wide tile is zero-filled, which adds exact zeros to every accumulator alike.
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>

#include <string>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {
namespace {

using bf16 = __nv_bfloat16;
constexpr int kPad = 8;  // bf16 per shared row beyond BK: spreads fragment rows over banks, keeps 32-byte alignment
constexpr int kMaxJobs = 3;
constexpr int64_t kChunk = 1024;  // k per partial sum (a multiple of every BK)

int64_t n_chunks(int64_t k) { return (k + kChunk - 1) / kChunk; }

struct TcJob {
  const bf16* w;  // [m, k]
  int64_t m;
  float* y;       // [n, m]
  float* part;    // split launches with more than one chunk: [chunks, n, m] partials
  int tile0;      // first column tile of this product in grid.x
};
struct TcJobs {
  TcJob job[kMaxJobs];
  int count;
};

__device__ inline void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int bytes = valid ? 16 : 0;  // 0: nothing read, the 16 bytes zero-filled
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ inline void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Block (x, y, z): column tile x of some job (BN outputs), row tile y (BM rows of x), and (kSplit)
// chunk z of k. Warps form a (BM/WM) x (BN/WN) grid, each owning WM x WN outputs as 16x16
// accumulator fragments.
template <int BM, int BN, int WM, int WN, int BK, int STAGES, bool kSplit>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32)
    tc_matmul_kernel(const bf16* __restrict__ x, const bf16* __restrict__ xlo, int64_t n, int64_t k, TcJobs jobs) {
  static_assert(kChunk % BK == 0, "a k tile never straddles two chunks");
  constexpr int kWarpsN = BN / WN, kThreads = (BM / WM) * kWarpsN * 32;
  constexpr int FM = WM / 16, FN = WN / 16, LD = BK + kPad;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* As = reinterpret_cast<bf16*>(smem);     // [STAGES][2][BM][LD]: hi, lo
  bf16* Bs = As + STAGES * 2 * BM * LD;         // [STAGES][BN][LD]
  float* Cs = reinterpret_cast<float*>(smem);   // [BM][BN + 4], after the main loop

  int j = 0;
  while (j + 1 < jobs.count && int(blockIdx.x) >= jobs.job[j + 1].tile0) ++j;
  const TcJob job = jobs.job[j];
  const bf16* __restrict__ w = job.w;
  const int64_t m = job.m;
  const int64_t row0 = int64_t(blockIdx.y) * BM, col0 = int64_t(int(blockIdx.x) - job.tile0) * BN;
  const int tid = threadIdx.x, warp = tid / 32;
  const int wr = (warp / kWarpsN) * WM, wc = (warp % kWarpsN) * WN;

  // This block's k range: one chunk (kSplit), or all of k, folded chunk by chunk.
  const int64_t kbeg = kSplit ? int64_t(blockIdx.z) * kChunk : 0;
  const int64_t kend = kSplit ? min(k, kbeg + kChunk) : k;

  // One stage: BM rows of x and BN rows of w, BK columns from k0, in 16-byte pieces.
  auto load_stage = [&](int stage, int64_t k0) {
    bf16* as = As + stage * 2 * BM * LD;
    bf16* bs = Bs + stage * BN * LD;
    constexpr int kPerRow = BK / 8;
    for (int e = tid; e < 2 * BM * kPerRow; e += kThreads) {
      const int half = e / (BM * kPerRow), r = (e / kPerRow) % BM, c = (e % kPerRow) * 8;
      const int64_t gr = row0 + r, gc = k0 + c;
      const bool ok = gr < n && gc < k;
      const bf16* src = half ? xlo : x;
      cp_async16(as + (half * BM + r) * LD + c, ok ? src + gr * k + gc : src, ok);
    }
    for (int e = tid; e < BN * kPerRow; e += kThreads) {
      const int r = e / kPerRow, c = (e % kPerRow) * 8;
      const int64_t gr = col0 + r, gc = k0 + c;
      const bool ok = gr < m && gc < k;
      cp_async16(bs + r * LD + c, ok ? w + gr * k + gc : w, ok);
    }
  };

  // acc: the current chunk's partial; total: +0 plus the finished chunks' partials, in order.
  nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> acc[FM][FN], total[FM][FN];
#pragma unroll
  for (int a = 0; a < FM; ++a)
#pragma unroll
    for (int b = 0; b < FN; ++b) nvcuda::wmma::fill_fragment(acc[a][b], 0.0f), nvcuda::wmma::fill_fragment(total[a][b], 0.0f);
  auto fold = [&] {
#pragma unroll
    for (int a = 0; a < FM; ++a)
#pragma unroll
      for (int b = 0; b < FN; ++b)
#pragma unroll
        for (int i = 0; i < total[a][b].num_elements; ++i) {
          total[a][b].x[i] = __fadd_rn(total[a][b].x[i], acc[a][b].x[i]);
          acc[a][b].x[i] = 0.0f;
        }
  };

  const int64_t ktiles = (kend - kbeg + BK - 1) / BK;
  constexpr int64_t kTilesPerChunk = kChunk / BK;
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ktiles) load_stage(s, kbeg + int64_t(s) * BK);
    cp_async_commit();  // empty groups keep the count of groups in flight fixed
  }
  for (int64_t kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<STAGES - 2>();  // tile kt has landed (this thread's part) ...
    __syncthreads();              // ... everyone's, and tile kt-1's stage is free to refill
    const int64_t next = kt + STAGES - 1;
    if (next < ktiles) load_stage(int(next % STAGES), kbeg + next * BK);
    cp_async_commit();
    const bf16* as = As + int(kt % STAGES) * 2 * BM * LD;
    const bf16* bs = Bs + int(kt % STAGES) * BN * LD;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, bf16, nvcuda::wmma::row_major> fa[FM];
      nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, bf16, nvcuda::wmma::col_major> fb[FN];
#pragma unroll
      for (int b = 0; b < FN; ++b) nvcuda::wmma::load_matrix_sync(fb[b], bs + (wc + 16 * b) * LD + kk, LD);
#pragma unroll
      for (int half = 0; half < 2; ++half) {
#pragma unroll
        for (int a = 0; a < FM; ++a)
          nvcuda::wmma::load_matrix_sync(fa[a], as + (half * BM + wr + 16 * a) * LD + kk, LD);
#pragma unroll
        for (int a = 0; a < FM; ++a)
#pragma unroll
          for (int b = 0; b < FN; ++b) nvcuda::wmma::mma_sync(acc[a][b], fa[a], fb[b], acc[a][b]);
      }
    }
    if ((kt + 1) % kTilesPerChunk == 0 || kt + 1 == ktiles) fold();
  }
  cp_async_wait<0>();
  __syncthreads();  // the pipeline's shared memory becomes the output staging tile
  constexpr int LDC = BN + 4;
#pragma unroll
  for (int a = 0; a < FM; ++a)
#pragma unroll
    for (int b = 0; b < FN; ++b)
      nvcuda::wmma::store_matrix_sync(Cs + (wr + 16 * a) * LDC + wc + 16 * b, total[a][b], LDC,
                                      nvcuda::wmma::mem_row_major);
  __syncthreads();
  // A split block with company writes its chunk's partial; the others the output.
  float* out = kSplit && gridDim.z > 1 ? job.part + int64_t(blockIdx.z) * n * m : job.y;
  for (int e = tid; e < BM * BN; e += kThreads) {
    const int r = e / BN, c = e % BN;
    const int64_t gr = row0 + r, gc = col0 + c;
    if (gr < n && gc < m) out[gr * m + gc] = Cs[r * LDC + c];
  }
}

// y = +0 plus the chunks' partials in chunk order, for every job of a split launch.
__global__ void add_partials_kernel(TcJobs jobs, int64_t n, int chunks) {
  for (int j = 0; j < jobs.count; ++j) {
    const TcJob job = jobs.job[j];
    const int64_t count = n * job.m;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
      float y = 0.0f;
      for (int c = 0; c < chunks; ++c) y = __fadd_rn(y, job.part[c * count + i]);
      job.y[i] = y;
    }
  }
}

template <int BM, int BN, int WM, int WN, int BK, int STAGES, bool kSplit = false>
void launch(const bf16* x, const bf16* xlo, int64_t n, int64_t k, std::span<const MatmulOutput> outs) {
  constexpr int kThreads = (BM / WM) * (BN / WN) * 32;
  constexpr size_t kPipe = size_t(STAGES) * (2 * BM + BN) * (BK + kPad) * sizeof(bf16);
  constexpr size_t kOut = size_t(BM) * (BN + 4) * sizeof(float);
  constexpr size_t kSmem = kPipe > kOut ? kPipe : kOut;
  auto kernel = tc_matmul_kernel<BM, BN, WM, WN, BK, STAGES, kSplit>;
  static const bool attr = [&] {
    KVAUDIT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem)));
    return true;
  }();
  (void)attr;
  const int chunks = kSplit ? int(n_chunks(k)) : 1;
  // The split partials: scratch shared by every backend of the process (one host thread, the
  // default stream), [chunks, n, m] per job.
  static DeviceBuffer<float> parts;
  int64_t part_count = 0;
  for (const MatmulOutput& o : outs) part_count += chunks > 1 ? chunks * n * o.m : 0;
  if (parts.size() < size_t(part_count)) parts.resize(size_t(part_count));
  TcJobs jobs{};
  jobs.count = int(outs.size());
  int tile = 0;
  int64_t part_at = 0;
  for (size_t i = 0; i < outs.size(); ++i) {
    jobs.job[i] = {static_cast<const bf16*>(outs[i].w), outs[i].m, outs[i].y, parts.data() + part_at, tile};
    if (chunks > 1) part_at += chunks * n * outs[i].m;
    tile += int((outs[i].m + BN - 1) / BN);
  }
  const dim3 grid{unsigned(tile), unsigned((n + BM - 1) / BM), unsigned(chunks)};
  kernel<<<grid, kThreads, kSmem, stream()>>>(x, xlo, n, k, jobs);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
  if (chunks > 1) {
    int64_t most = 0;
    for (const MatmulOutput& o : outs) most = std::max(most, n * o.m);
    add_partials_kernel<<<unsigned(std::min<int64_t>((most + 255) / 256, 1024)), 256, 0, stream()>>>(jobs, n, chunks);
    KVAUDIT_CUDA_CHECK(cudaGetLastError());
  }
}

__global__ void split_bf16_kernel(const float* __restrict__ x, int64_t count, bf16* __restrict__ hi,
                                  bf16* __restrict__ lo) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const bf16 h = __float2bfloat16_rn(x[i]);
    hi[i] = h;
    lo[i] = __float2bfloat16_rn(x[i] - __bfloat162float(h));
  }
}

}  // namespace

int tc_matmul_config(int64_t n, std::span<const MatmulOutput> outs) {
  if (n <= 16) return 0;
  // The 128x128 tiles run one block per SM: only with enough of them to fill the device twice
  // (a batch-256 decode step's q/k/v, o and down projections of an 8B model have 64-96).
  int64_t tiles = 0;
  for (const MatmulOutput& o : outs) tiles += (o.m + 127) / 128;
  return (n + 127) / 128 * tiles >= 2 * device_limits().sms ? 2 : 1;
}

void tc_matmul_many_cuda(const float* x, int64_t n, int64_t k, std::span<const MatmulOutput> outs, int config) {
  if (k % 8 != 0)
    throw_runtime("tc_matmul_many_cuda: k = " + std::to_string(k) + " is not a multiple of 8");
  if (outs.size() > size_t(kMaxJobs)) throw_runtime("tc_matmul_many_cuda: more than 3 products in one launch");
  // Scratch shared by every backend of the process (one host thread, the default stream).
  static DeviceBuffer<bf16> xb;
  const int64_t count = n * k;
  if (xb.size() < size_t(2 * count)) xb.resize(size_t(2 * count));
  bf16 *hi = xb.data(), *lo = xb.data() + count;
  split_bf16_kernel<<<unsigned(std::min<int64_t>((count + 255) / 256, 4096)), 256, 0, stream()>>>(x, count, hi, lo);
  KVAUDIT_CUDA_CHECK(cudaGetLastError());
  if (config < 0) config = tc_matmul_config(n, outs);
  switch (config) {
    case 0: return launch<16, 32, 16, 16, 64, 4, true>(hi, lo, n, k, outs);  // decode: 2 warps, strips of w
    case 1: return launch<64, 64, 32, 32, 32, 4>(hi, lo, n, k, outs);     // 4 warps
    default: return launch<128, 128, 64, 32, 32, 4>(hi, lo, n, k, outs);  // prefill: 8 warps
  }
}

}  // namespace kvaudit::engine::cuda
