// Each CUDA op against its CPU reference (engine/ops.h) on seeded inputs, with a named tolerance
// per op: the orders of summation differ (fixed on both sides), the formulas do not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/half.h"
#include "cuda_test_util.h"
#include "engine/cuda/chain_spike.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/lt_product.h"
#include "engine/cuda/ops_cuda.h"
#include "engine/engine.h"
#include "engine/ops.h"

namespace kvaudit::engine {
namespace {

using cuda::DeviceBuffer;
using cuda_testing::rel_err;
using cuda_testing::same_bits;
using cuda_testing::uniform;

// fp32 dot products of up to 3,000 terms, CPU 8-lane blocked vs CUDA chunked order: rounding
// errors ~sqrt(k) * 2^-24 of the terms' magnitude, far under this.
constexpr double kMatmulRelTol = 1e-5;
// RMSNorm: a block-tree vs left-to-right sum of squares, one division and square root.
constexpr double kNormRelTol = 1e-5;
// expf / tanhf (CUDA's, within 2 ulp) vs the CPU's exp8 / std::tanh (within ~1 ulp).
constexpr double kActivationRelTol = 1e-5;
// Attention: head_dim-term scores, then a softmax and a weighted sum over at most ~20 keys.
constexpr double kAttentionRelTol = 1e-5;
// AttnMath::kFp16TensorCores: q, k, v and the softmax's weights each rounded to fp16 (2^-11 relative).
constexpr double kAttentionFp16RelTol = 4e-3;

struct MatmulCase {
  cuda::WeightType type;
  int64_t n, k, m;
};

class MatmulCuda : public ::testing::TestWithParam<MatmulCase> {};

// y = x @ w.T against cpu::matmul on the weights as the device stores them (bf16: rounded to
// nearest even, then exact in fp32), and each row bit-identical to the same row computed alone.
TEST_P(MatmulCuda, MatchesCpuAndEachRowAlone) {
  KVAUDIT_REQUIRE_CUDA();
  const MatmulCase c = GetParam();
  const auto x = uniform(size_t(c.n * c.k), 1.0f, 1);
  auto w = uniform(size_t(c.m * c.k), 0.2f, 2);
  DeviceBuffer<float> dx(x), dy(size_t(c.n * c.m)), dy1(size_t(c.m));
  DeviceBuffer<float> dw32;
  DeviceBuffer<uint16_t> dw16;
  const void* dw = nullptr;
  if (c.type == cuda::WeightType::kF32) {
    dw32.upload(w);
    dw = dw32.data();
  } else {
    std::vector<uint16_t> bits(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      bits[i] = float_to_bf16(w[i]);
      w[i] = bf16_to_float(bits[i]);
    }
    dw16.upload(bits);
    dw = dw16.data();
  }
  cuda::matmul_cuda(dx.data(), c.n, c.k, dw, c.type, c.m, dy.data());
  const std::vector<float> got = dy.download();
  std::vector<float> ref(size_t(c.n * c.m));
  cpu::matmul(x.data(), c.n, c.k, w.data(), c.m, ref.data());
  EXPECT_LE(rel_err(got, ref), kMatmulRelTol);
  // Batch invariance: the first and last rows alone (a different tile shape when n > 16).
  for (int64_t t : {int64_t(0), c.n - 1}) {
    cuda::matmul_cuda(dx.data() + t * c.k, 1, c.k, dw, c.type, c.m, dy1.data());
    const std::vector<float> alone = dy1.download();
    EXPECT_TRUE(same_bits(alone.data(), got.data() + t * c.m, size_t(c.m))) << "row " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, MatmulCuda,
                         ::testing::Values(MatmulCase{cuda::WeightType::kF32, 1, 64, 96},
                                           MatmulCase{cuda::WeightType::kF32, 37, 200, 130},
                                           MatmulCase{cuda::WeightType::kF32, 70, 33, 65},
                                           MatmulCase{cuda::WeightType::kF32, 20, 3000, 70},  // 16 k chunks of 192
                                           MatmulCase{cuda::WeightType::kBf16, 130, 1000, 40},
                                           MatmulCase{cuda::WeightType::kBf16, 1, 64, 96},
                                           MatmulCase{cuda::WeightType::kBf16, 37, 200, 130}),
                         [](const auto& info) {
                           const MatmulCase& c = info.param;
                           return std::string(c.type == cuda::WeightType::kF32 ? "fp32" : "bf16") + "_n" +
                                  std::to_string(c.n) + "_k" + std::to_string(c.k) + "_m" + std::to_string(c.m);
                         });

// kBf16Tc: w bf16 and x as hi + lo bf16 (every product exact in fp32), fp32 sums in mma order:
// against cpu::matmul of the values carried, the sums' order is the only difference.
constexpr double kTcMatmulRelTol = 1e-5;

std::vector<float> round_bf16(std::vector<float> v, std::vector<uint16_t>* bits = nullptr) {
  if (bits) bits->resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t b = float_to_bf16(v[i]);
    if (bits) (*bits)[i] = b;
    v[i] = bf16_to_float(b);
  }
  return v;
}

struct TcCase {
  int64_t n, k, m;
};
class TcMatmulCuda : public ::testing::TestWithParam<TcCase> {};

// Within kTcMatmulRelTol of the CPU on the values it carries (w bf16, x a pair of bf16), and the same bits from every tile shape,
// for each row alone, and for a product sharing its launch with two others (q/k/v).
TEST_P(TcMatmulCuda, MatchesCpuAndIsTheSameBitsForEveryTileShapeAndRowAlone) {
  KVAUDIT_REQUIRE_CUDA();
  const TcCase c = GetParam();
  const auto x = uniform(size_t(c.n * c.k), 1.0f, 11);
  std::vector<uint16_t> bits;
  const auto w = round_bf16(uniform(size_t(c.m * c.k), 0.2f, 12), &bits);
  DeviceBuffer<float> dx(x), dy(size_t(c.n * c.m)), dy2(size_t(c.n * c.m));
  DeviceBuffer<uint16_t> dw(bits);
  cuda::matmul_cuda(dx.data(), c.n, c.k, dw.data(), cuda::WeightType::kBf16Tc, c.m, dy.data());
  const std::vector<float> got = dy.download();
  std::vector<float> ref(size_t(c.n * c.m));
  // x goes as hi + lo, two bf16 (matmul_tc_cuda.cu): the reference takes that sum.
  auto xr = round_bf16(x);
  for (size_t i = 0; i < x.size(); ++i) xr[i] += bf16_to_float(float_to_bf16(x[i] - xr[i]));
  cpu::matmul(xr.data(), c.n, c.k, w.data(), c.m, ref.data());
  EXPECT_LE(rel_err(got, ref), kTcMatmulRelTol);
  for (int config = 0; config < 3; ++config) {
    const cuda::MatmulOutput out{dw.data(), c.m, dy2.data()};
    cuda::tc_matmul_many_cuda(dx.data(), c.n, c.k, {&out, 1}, config);
    EXPECT_TRUE(same_bits(dy2.download().data(), got.data(), got.size())) << "tile shape " << config;
  }
  for (int64_t t : {int64_t(0), c.n / 2, c.n - 1}) {
    cuda::matmul_cuda(dx.data() + t * c.k, 1, c.k, dw.data(), cuda::WeightType::kBf16Tc, c.m, dy2.data());
    EXPECT_TRUE(same_bits(dy2.download().data(), got.data() + t * c.m, size_t(c.m))) << "row " << t;
  }
  // Three products in one launch (the first is this one): each column tile belongs to one of them.
  const auto w2 = round_bf16(uniform(size_t(40 * c.k), 0.2f, 13), &bits);
  DeviceBuffer<uint16_t> dw2(bits);
  DeviceBuffer<float> dya(size_t(c.n * 40)), dyb(size_t(c.n * 40));
  const cuda::MatmulOutput outs[3] = {{dw.data(), c.m, dy2.data()}, {dw2.data(), 40, dya.data()}, {dw2.data(), 40, dyb.data()}};
  cuda::matmul_many_cuda(dx.data(), c.n, c.k, cuda::WeightType::kBf16Tc, outs);
  EXPECT_TRUE(same_bits(dy2.download().data(), got.data(), got.size()));
  EXPECT_TRUE(same_bits(dya.download().data(), dyb.download().data(), size_t(c.n * 40)));
}

INSTANTIATE_TEST_SUITE_P(Ops, TcMatmulCuda,
                         ::testing::Values(TcCase{1, 64, 96}, TcCase{5, 48, 64}, TcCase{37, 200, 130},
                                           TcCase{130, 1000, 40}, TcCase{20, 3000, 70}, TcCase{300, 4096, 200},
                                           TcCase{3, 5000, 100}, TcCase{16, 2048, 64}),
                         [](const auto& info) {
                           const TcCase& c = info.param;
                           return "n" + std::to_string(c.n) + "_k" + std::to_string(c.k) + "_m" + std::to_string(c.m);
                         });

// kBf16Lt: w bf16 and x rounded to bf16, so every product is exact in fp32 and the order of the
// fp32 sums is the only difference from cpu::matmul.
constexpr double kLtMatmulRelTol = 1e-5;
// kBf16LtFast (not batch invariant): cuBLASLt's own algorithm for n rows, split-K among them, adds
// the same exact products in another order (k = 8192 on an H200: 1.1e-5).
constexpr double kLtFastRelTol = 2e-5;

class LtMatmulCuda : public ::testing::TestWithParam<TcCase> {};

// Three products packed back to back (as q/k/v) and one alone: within kLtMatmulRelTol of the CPU on
// sampled rows, and every sampled row the same bits alone, in the whole batch and in half of it.
TEST_P(LtMatmulCuda, MatchesCpuAndEachRowIsTheSameBitsAloneAndInAnyBatch) {
  KVAUDIT_REQUIRE_CUDA();
  const TcCase c = GetParam();
  const int64_t m_all = c.m + 80;
  const auto x = uniform(size_t(c.n * c.k), 1.0f, 21);
  std::vector<uint16_t> bits;
  const auto w = round_bf16(uniform(size_t(m_all * c.k), 0.2f, 22), &bits);
  const auto xr = round_bf16(x);
  DeviceBuffer<float> dx(x), dy(size_t(c.n * c.m)), dya(size_t(c.n * 40)), dyb(size_t(c.n * 40));
  DeviceBuffer<float> dz(size_t(c.n * c.m));
  DeviceBuffer<uint16_t> dw(bits);
  const auto outs = [&](float* y, float* ya, float* yb) {
    return std::vector<cuda::MatmulOutput>{{dw.data(), c.m, y},
                                           {dw.data() + c.m * c.k, 40, ya},
                                           {dw.data() + (c.m + 40) * c.k, 40, yb}};
  };
  cuda::matmul_many_cuda(dx.data(), c.n, c.k, cuda::WeightType::kBf16Lt, outs(dy.data(), dya.data(), dyb.data()));
  cuda::matmul_cuda(dx.data(), c.n, c.k, dw.data(), cuda::WeightType::kBf16Lt, c.m, dz.data());
  // The opt-in path without batch invariance (cuBLASLt's choice for n rows): within the same
  // tolerance, not the same bits.
  DeviceBuffer<float> df(size_t(c.n * c.m)), dfa(size_t(c.n * 40)), dfb(size_t(c.n * 40));
  cuda::matmul_many_cuda(dx.data(), c.n, c.k, cuda::WeightType::kBf16LtFast, outs(df.data(), dfa.data(), dfb.data()));
  const std::vector<float> y = dy.download(), ya = dya.download(), yb = dyb.download(), z = dz.download();
  const std::vector<float> yf = df.download(), yfa = dfa.download(), yfb = dfb.download();
  std::vector<int64_t> sample = {0, c.n / 2, c.n - 1};
  sample.erase(std::unique(sample.begin(), sample.end()), sample.end());
  std::vector<float> ref(static_cast<size_t>(m_all)), got(static_cast<size_t>(m_all));
  DeviceBuffer<float> d1(size_t(c.m)), d1a(40), d1b(40);
  for (const int64_t t : sample) {
    cpu::matmul(xr.data() + t * c.k, 1, c.k, w.data(), m_all, ref.data());
    std::copy_n(y.data() + t * c.m, c.m, got.begin());
    std::copy_n(ya.data() + t * 40, 40, got.begin() + c.m);
    std::copy_n(yb.data() + t * 40, 40, got.begin() + c.m + 40);
    EXPECT_LE(rel_err(got, ref), kLtMatmulRelTol) << "row " << t;
    std::copy_n(yf.data() + t * c.m, c.m, got.begin());
    std::copy_n(yfa.data() + t * 40, 40, got.begin() + c.m);
    std::copy_n(yfb.data() + t * 40, 40, got.begin() + c.m + 40);
    EXPECT_LE(rel_err(got, ref), kLtFastRelTol) << "row " << t << " (not invariant)";
    EXPECT_LE(rel_err(std::vector<float>(z.begin() + t * c.m, z.begin() + (t + 1) * c.m),
                      std::vector<float>(ref.begin(), ref.begin() + c.m)),
              kLtMatmulRelTol)
        << "row " << t << " alone";
    // Alone: the same bits.
    cuda::matmul_many_cuda(dx.data() + t * c.k, 1, c.k, cuda::WeightType::kBf16Lt, outs(d1.data(), d1a.data(), d1b.data()));
    EXPECT_TRUE(same_bits(d1.download().data(), y.data() + t * c.m, size_t(c.m))) << "row " << t;
    EXPECT_TRUE(same_bits(d1a.download().data(), ya.data() + t * 40, 40)) << "row " << t;
    EXPECT_TRUE(same_bits(d1b.download().data(), yb.data() + t * 40, 40)) << "row " << t;
    cuda::matmul_cuda(dx.data() + t * c.k, 1, c.k, dw.data(), cuda::WeightType::kBf16Lt, c.m, d1.data());
    EXPECT_TRUE(same_bits(d1.download().data(), z.data() + t * c.m, size_t(c.m))) << "row " << t << " single product";
  }
  // The second half of the rows as a batch of their own.
  const int64_t h = c.n / 2, nh = c.n - h;
  DeviceBuffer<float> dh(size_t(nh * c.m)), dha(size_t(nh * 40)), dhb(size_t(nh * 40));
  cuda::matmul_many_cuda(dx.data() + h * c.k, nh, c.k, cuda::WeightType::kBf16Lt, outs(dh.data(), dha.data(), dhb.data()));
  EXPECT_TRUE(same_bits(dh.download().data(), y.data() + h * c.m, size_t(nh * c.m)));
  EXPECT_TRUE(same_bits(dhb.download().data(), yb.data() + h * 40, size_t(nh * 40)));
}

// The kernels that add the chunk sums themselves (forward_cuda.cc's fused_rest) against the unfused
// ops on the summed product: the gated activation then bf16, the residual add + RMSNorm (fp32 and
// bf16 outputs), the residual add alone; invariant and not. The same bits.
TEST_P(LtMatmulCuda, FusedConsumersAreTheSameBitsAsTheUnfusedOps) {
  KVAUDIT_REQUIRE_CUDA();
  const TcCase c = GetParam();
  const int64_t n = c.n, k = c.k, m = c.m;
  std::vector<uint16_t> wbits;
  round_bf16(uniform(size_t(2 * m * k), 0.2f, 23), &wbits);
  const auto resid = uniform(size_t(n * m), 3.0f, 24), norm_w = uniform(size_t(m), 1.0f, 25);
  DeviceBuffer<float> dx(uniform(size_t(n * k), 1.0f, 26)), dnw(norm_w);
  DeviceBuffer<uint16_t> dw(wbits), dxb(size_t(n * k));
  cuda::to_bf16_cuda(dx.data(), n * k, dxb.data());
  const auto bits16 = [](const DeviceBuffer<uint16_t>& a, const DeviceBuffer<uint16_t>& b) { return a.download() == b.download(); };
  for (const bool invariant : {true, false}) {
    SCOPED_TRACE(invariant ? "invariant" : "not invariant");
    // gate|up packed: one product of 2m columns, its halves the gate and the up.
    DeviceBuffer<float> g(size_t(n * m)), u(size_t(n * m));
    const cuda::MatmulOutput gu[] = {{dw.data(), m, g.data()}, {dw.data() + m * k, m, u.data()}};
    cuda::lt_matmul_many_bf16_cuda(dxb.data(), n, k, gu, invariant);
    for (const auto act : {cpu::Activation::kSilu, cpu::Activation::kGeluTanh}) {
      DeviceBuffer<float> a(size_t(n * m));
      DeviceBuffer<uint16_t> want(size_t(n * m)), got(size_t(n * m));
      cuda::gated_activation_cuda(act, g.data(), u.data(), n, m, a.data());
      cuda::to_bf16_cuda(a.data(), n * m, want.data());
      cuda::lt_products_cuda(dxb.data(), n, k, dw.data(), 2 * m, invariant,
                             [&](const cuda::PartSums& p, int64_t t0, int64_t rows) {
                               cuda::gated_parts_cuda(act, p, p.at_column(m), rows, m, got.data() + t0 * m);
                             });
      EXPECT_TRUE(bits16(got, want)) << "gated activation";
    }
    // x += o_proj(...); y = rmsnorm(x): o the product of the first m columns alone (cuBLASLt's choice
    // of algorithm may differ between shapes).
    DeviceBuffer<float> o(size_t(n * m));
    const cuda::MatmulOutput one[] = {{dw.data(), m, o.data()}};
    cuda::lt_matmul_many_bf16_cuda(dxb.data(), n, k, one, invariant);
    for (const bool with_norm : {true, false}) {
      DeviceBuffer<float> x1(resid), x2(resid), y1(size_t(n * m)), y2(size_t(n * m));
      DeviceBuffer<uint16_t> b1(size_t(n * m)), b2(size_t(n * m));
      if (with_norm) {
        cuda::add_rmsnorm_cuda(cpu::NormKind::kRms, x1.data(), o.data(), n, m, dnw.data(), 1e-5f, y1.data());
        cuda::to_bf16_cuda(y1.data(), n * m, b1.data());
      } else {
        cuda::add_inplace_cuda(x1.data(), o.data(), n * m);
      }
      cuda::lt_products_cuda(dxb.data(), n, k, dw.data(), m, invariant,
                             [&](const cuda::PartSums& p, int64_t t0, int64_t rows) {
                               cuda::add_parts_rmsnorm_cuda(cpu::NormKind::kRms, x2.data() + t0 * m, p, rows, m,
                                                            with_norm ? dnw.data() : nullptr, 1e-5f,
                                                            y2.data() + t0 * m, b2.data() + t0 * m);
                             });
      const std::vector<float> h1 = x1.download(), h2 = x2.download();
      EXPECT_TRUE(same_bits(h1.data(), h2.data(), h1.size())) << "residual, norm " << with_norm;
      if (!with_norm) continue;
      const std::vector<float> z1 = y1.download(), z2 = y2.download();
      EXPECT_TRUE(same_bits(z1.data(), z2.data(), z1.size())) << "norm";
      EXPECT_TRUE(bits16(b1, b2)) << "norm, bf16";
    }
  }
}

// k: one chunk, chunks and a shorter last one, four equal chunks of 3,584 (lt_k_split: the 8B's
// down, 14,336); m not a multiple of 4; n = 1100 with k = 8192 and
// m = 8192 runs its rows in two passes and two slices (lt_product.h); q/k/v of an 8B at 600 rows,
// where cuBLASLt offers kernels that compute other bits than the anchor (docs/PERFORMANCE.md).
INSTANTIATE_TEST_SUITE_P(Ops, LtMatmulCuda,
                         ::testing::Values(TcCase{1, 64, 96}, TcCase{37, 200, 130}, TcCase{20, 3000, 70},
                                           TcCase{300, 4096, 200}, TcCase{3, 5000, 100}, TcCase{257, 1536, 576},
                                           TcCase{1100, 8192, 8112}, TcCase{600, 4096, 6064}, TcCase{5, 14336, 96}),
                         [](const auto& info) {
                           const TcCase& c = info.param;
                           return "n" + std::to_string(c.n) + "_k" + std::to_string(c.k) + "_m" + std::to_string(c.m);
                         });

// lt_product's streaming candidates (matmul_gemv_cuda.cu) on their own, every variant, against
// the chunk sums in double on the host: 1 to 16 rows, two chunks of k, m not a multiple of 16, d's
// rows ld > m apart (the columns between untouched); the bulk-copy and tensor-tile kernels bit for
// bit as the cp.async kernel of the same operand order. Whether one is admitted (the anchor's bits)
// is the admission's check; the tests above then cover it.
TEST(OpsCuda, StreamingProductsMatchTheHost) {
  KVAUDIT_REQUIRE_CUDA();
  const int64_t m = 200, k = 2 * 1024 + 64, kc = 1024, ld = 204;
  const int batch = 2;
  std::vector<uint16_t> wbits, xbits;
  const auto w = round_bf16(uniform(size_t(m * k), 0.2f, 31), &wbits);
  const auto x = round_bf16(uniform(size_t(16 * k), 1.0f, 32), &xbits);
  DeviceBuffer<uint16_t> dw(wbits), dx(xbits);
  for (const cuda::GemvKernel& g : cuda::gemv_kernels()) {
    for (const int64_t rows : {1, 2, 3, 8, 16}) {
      if (!cuda::gemv_fits(g, rows, k, kc)) {
        EXPECT_TRUE(g.order == cuda::GemvOrder::kWeightsAsA && rows > (g.bulk || g.tensor ? 2 : 8));
        continue;
      }
      SCOPED_TRACE("rows " + std::to_string(rows) + (g.order == cuda::GemvOrder::kWeightsAsA ? ", W as A" : ", W as B") +
                   (g.tensor ? ", tensor tiles" : g.bulk ? ", bulk copies" : "") +
                   ", slabs of " + std::to_string(g.slab_k) + " x " + std::to_string(g.stages));
      const float fill = -7.0f;
      DeviceBuffer<float> dd(std::vector<float>(size_t(batch * rows * ld), fill));
      cuda::gemv_bf16_cuda(g, dw.data(), m, dx.data(), rows, k, kc, batch, dd.data(), ld, rows * ld);
      const std::vector<float> got = dd.download();
      if (g.bulk || g.tensor) {  // the cp.async kernel's mma chain, so its bits
        DeviceBuffer<float> dr(std::vector<float>(size_t(batch * rows * ld), fill));
        cuda::gemv_bf16_cuda({cuda::GemvOrder::kWeightsAsA, 64, 8}, dw.data(), m, dx.data(), rows, k, kc, batch,
                             dr.data(), ld, rows * ld);
        const std::vector<float> ref = dr.download();
        EXPECT_TRUE(same_bits(got.data(), ref.data(), got.size())) << "bulk copies or tensor tiles against cp.async";
      }
      std::vector<float> want(got.size(), fill);
      for (int b = 0; b < batch; ++b)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t i = 0; i < m; ++i) {
            double sum = 0;
            for (int64_t c = b * kc; c < (b + 1) * kc; ++c) sum += double(x[size_t(r * k + c)]) * double(w[size_t(i * k + c)]);
            want[size_t((b * rows + r) * ld + i)] = float(sum);
          }
      std::vector<float> got_m, want_m;
      for (size_t e = 0; e < got.size(); ++e) {
        if (int64_t(e % size_t(ld)) >= m) {
          ASSERT_EQ(got[e], fill) << "padding column written";
          continue;
        }
        got_m.push_back(got[e]);
        want_m.push_back(want[e]);
      }
      EXPECT_LE(rel_err(got_m, want_m), kLtMatmulRelTol);
    }
  }
}

// The gate/up product that applies the activation to its own tiles (gemv_gated_bf16_cuda, every
// tensor-tile variant; weights interleaved by 8, d_ff not a multiple of 16) against the same
// variant's plain product and gated_parts_cuda on its interleaved columns, bit for bit; and
// lt_gated_cuda, whichever kernel lt_product admits, against the product of gate|up stacked.
TEST(OpsCuda, GatedProductTilesGiveTheSeparateStepsBits) {
  KVAUDIT_REQUIRE_CUDA();
  const int64_t d_ff = 200, k = 1024, m = 2 * d_ff, ld = m;
  std::vector<uint16_t> stacked, by8(size_t(m * k));
  round_bf16(uniform(size_t(m * k), 0.2f, 41), &stacked);
  for (int64_t i = 0; i < d_ff / 8; ++i)
    for (int half = 0; half < 2; ++half)
      std::copy_n(stacked.begin() + (half * d_ff + 8 * i) * k, 8 * k, by8.begin() + (16 * i + 8 * half) * k);
  // x holds every row the loop below multiplies (with two, row 2 was whatever memory followed x:
  // the same for both sides only while nothing wrote there in between)
  const int64_t max_rows = 3;
  std::vector<uint16_t> xbits;
  round_bf16(uniform(size_t(max_rows * k), 1.0f, 42), &xbits);
  DeviceBuffer<uint16_t> dw(by8), dws(stacked), dx(xbits);
  const auto bits16 = [](const DeviceBuffer<uint16_t>& a, const DeviceBuffer<uint16_t>& b) { return a.download() == b.download(); };
  for (const auto act : {cpu::Activation::kSilu, cpu::Activation::kGeluTanh}) {
    const bool silu = act == cpu::Activation::kSilu;
    for (int64_t rows = 1; rows <= max_rows; ++rows) {
      SCOPED_TRACE("rows " + std::to_string(rows) + (silu ? ", silu" : ", gelu_tanh"));
      int tried = 0;
      for (const cuda::GemvKernel& g : cuda::gemv_kernels()) {
        if (!cuda::gemv_gated_fits(g, rows, k, d_ff)) {
          EXPECT_TRUE(!g.tensor || rows > 2);
          continue;
        }
        ++tried;
        SCOPED_TRACE(std::to_string(g.stages) + " stages");
        DeviceBuffer<float> sums(size_t(rows * ld));
        cuda::gemv_bf16_cuda(g, dw.data(), m, dx.data(), rows, k, k, 1, sums.data(), ld, rows * ld);
        DeviceBuffer<uint16_t> want(size_t(rows * d_ff)), got(size_t(rows * d_ff));
        const cuda::PartSums p{sums.data(), ld};
        cuda::gated_parts_cuda(act, p, p.at_column(8), rows, d_ff, want.data(), true);
        cuda::gemv_gated_bf16_cuda(g, dw.data(), dx.data(), rows, k, d_ff, silu, got.data());
        EXPECT_TRUE(bits16(got, want));
      }
      EXPECT_EQ(tried, rows <= 2 ? 3 : 0);
      // Through lt_product's choice, against the stacked weights' product and the activation.
      DeviceBuffer<uint16_t> want(size_t(rows * d_ff)), got(size_t(rows * d_ff));
      cuda::lt_products_cuda(dx.data(), rows, k, dws.data(), m, true, [&](const cuda::PartSums& p, int64_t t0, int64_t n) {
        cuda::gated_parts_cuda(act, p, p.at_column(d_ff), n, d_ff, want.data() + t0 * d_ff);
      });
      cuda::lt_gated_cuda(dx.data(), rows, k, dw.data(), d_ff, act, true, got.data());
      EXPECT_TRUE(bits16(got, want)) << "lt_gated_cuda";
    }
  }
}

// The q/k/v product that splits, biases and rotates its own tiles (gemv_qkv_rope_bf16_cuda, every
// tensor-tile variant; each tile two 8-row boxes of one head) against the same variant's plain
// product and qkv_rope_cuda, bit for bit; and lt_qkv_rope_cuda, whichever kernel lt_product admits,
// against lt_products_cuda and qkv_rope_cuda.
TEST(OpsCuda, QkvRopeProductTilesGiveTheSeparateStepsBits) {
  KVAUDIT_REQUIRE_CUDA();
  const int hq = 4, hkv = 2;
  const int64_t k = 1024, max_rows = 3;
  std::vector<uint16_t> xbits;
  round_bf16(uniform(size_t(max_rows * k), 1.0f, 71), &xbits);
  DeviceBuffer<uint16_t> dx(xbits);
  for (const int head_dim : {16, 64, 128}) {
    const int half = head_dim / 2;
    const int64_t q_dim = hq * head_dim, kv_dim = hkv * head_dim, m = q_dim + 2 * kv_dim;
    std::vector<uint16_t> wbits;
    round_bf16(uniform(size_t(m * k), 0.2f, 72), &wbits);
    std::vector<float> inv_freq(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i) inv_freq[size_t(i)] = std::pow(10000.0f, -2.0f * float(i) / float(2 * half));
    std::vector<float> cs;
    cuda::rope_table(inv_freq, 1.0f, 9, max_rows, cs);
    DeviceBuffer<uint16_t> dw(wbits);
    DeviceBuffer<float> dcs(cs), dbias(uniform(size_t(m), 1.0f, 73));
    for (const bool biased : {false, true}) {
      const cuda::QkvBias bias = biased ? cuda::QkvBias{dbias.data(), dbias.data() + q_dim, dbias.data() + q_dim + kv_dim}
                                        : cuda::QkvBias{};
      for (int64_t rows = 1; rows <= max_rows; ++rows) {
        SCOPED_TRACE("head_dim " + std::to_string(head_dim) + ", rows " + std::to_string(rows) +
                     (biased ? ", biased" : ""));
        DeviceBuffer<float> want(size_t(rows * m)), got(size_t(rows * m));  // q | k | v
        const auto out = [&](DeviceBuffer<float>& b) {
          return cuda::QkvRope{bias, b.data(), b.data() + rows * q_dim, b.data() + rows * (q_dim + kv_dim), hq, hkv,
                               head_dim, half, dcs.data(), cuda::RopeKv{nullptr, nullptr}};
        };
        const auto steps = [&](const cuda::PartSums& p, const cuda::QkvRope& o, int64_t n) {
          cuda::qkv_rope_cuda(p, o.bias, o.q, hq, o.k, o.v, hkv, n, head_dim, half, o.cs);
        };
        int tried = 0;
        for (const cuda::GemvKernel& g : cuda::gemv_kernels()) {
          if (!cuda::gemv_qkv_rope_fits(g, rows, k, out(got))) {
            EXPECT_TRUE(!g.tensor || rows > 2);
            continue;
          }
          ++tried;
          SCOPED_TRACE(std::to_string(g.stages) + " stages");
          DeviceBuffer<float> sums(size_t(rows * m));
          cuda::gemv_bf16_cuda(g, dw.data(), m, dx.data(), rows, k, k, 1, sums.data(), m, rows * m);
          steps(cuda::PartSums{sums.data(), m}, out(want), rows);
          cuda::gemv_qkv_rope_bf16_cuda(g, dw.data(), dx.data(), rows, k, out(got));
          const auto a = got.download(), b = want.download();
          EXPECT_TRUE(same_bits(a.data(), b.data(), b.size()));
        }
        EXPECT_EQ(tried, rows <= 2 ? 3 : 0);
        // Through lt_product's choice, against its product and the separate launch.
        cuda::lt_products_cuda(dx.data(), rows, k, dw.data(), m, true,
                               [&](const cuda::PartSums& p, int64_t t0, int64_t n) { steps(p, out(want).from_row(t0), n); });
        cuda::lt_qkv_rope_cuda(dx.data(), rows, k, dw.data(), out(got), true);
        const auto a = got.download(), b = want.download();
        EXPECT_TRUE(same_bits(a.data(), b.data(), b.size())) << "lt_qkv_rope_cuda";
      }
    }
  }
}

TEST(OpsCuda, RmsNormBothKindsMatchCpu) {
  KVAUDIT_REQUIRE_CUDA();
  for (const auto kind : {cpu::NormKind::kRms, cpu::NormKind::kRmsOnePlus})
    for (const int64_t d : {int64_t(8), int64_t(576), int64_t(1000)}) {
      const int64_t n = 5;
      const auto x = uniform(size_t(n * d), 2.0f, 3);
      const auto w = uniform(size_t(d), 1.0f, 4);
      DeviceBuffer<float> dx(x), dw(w);
      cuda::rmsnorm_cuda(kind, dx.data(), n, d, dw.data(), 1e-6f, dx.data());  // in place, as the forward does
      std::vector<float> ref(x.size());
      cpu::rmsnorm(kind, x.data(), n, d, w.data(), 1e-6f, ref.data());
      EXPECT_LE(rel_err(dx.download(), ref), kNormRelTol) << "d " << d;
    }
}

// The kernel's sum of squares is a fixed tree, written here plainly: thread t of T (a power of two
// giving each ~4 values) sums c = t, t + T, ... by fma in order, then part[t] += part[t + s] for
// s = T/2 .. 1; 1 / sqrt(sum / d + eps), then w · (x · inv). Bit for bit, widths of 32 to 1,024
// threads (the one-warp tree, the cross-warp levels, a short last pass).
TEST(OpsCuda, RmsNormIsItsBlockTreeBitForBit) {
  KVAUDIT_REQUIRE_CUDA();
  for (const int64_t d : {int64_t(8), int64_t(200), int64_t(576), int64_t(1000), int64_t(4096), int64_t(5120)}) {
    const int64_t n = 3;
    const float eps = 1e-5f;
    const auto x = uniform(size_t(n * d), 2.0f, 5);
    const auto w = uniform(size_t(d), 1.0f, 6);
    int64_t threads = 32;
    while (threads < 1024 && threads * 4 < d) threads *= 2;
    std::vector<float> ref(x.size());
    for (int64_t r = 0; r < n; ++r) {
      const float* xr = x.data() + r * d;
      std::vector<float> part(size_t(threads), 0.0f);
      for (int64_t t = 0; t < threads; ++t)
        for (int64_t c = t; c < d; c += threads) part[size_t(t)] = std::fma(xr[c], xr[c], part[size_t(t)]);
      for (int64_t s = threads / 2; s > 0; s /= 2)
        for (int64_t t = 0; t < s; ++t) part[size_t(t)] += part[size_t(t + s)];
      const float inv = 1.0f / std::sqrt(part[0] / float(d) + eps);
      for (int64_t c = 0; c < d; ++c) ref[size_t(r * d + c)] = w[size_t(c)] * (xr[c] * inv);
    }
    DeviceBuffer<float> dx(x), dw(w), dy(x.size());
    cuda::rmsnorm_cuda(cpu::NormKind::kRms, dx.data(), n, d, dw.data(), eps, dy.data());
    EXPECT_TRUE(same_bits(dy.download().data(), ref.data(), ref.size())) << "d " << d;
  }
}

// The table and the rotation round as cpu::rope does: bit-identical, partial rotary included.
TEST(OpsCuda, RopeIsBitIdenticalToCpu) {
  KVAUDIT_REQUIRE_CUDA();
  for (const int head_dim : {8, 64}) {
    const int n_heads = 3, half = head_dim / 4;  // rotary_dim = head_dim / 2
    const int64_t n = 6, first_pos = 5;
    std::vector<float> inv_freq(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i) inv_freq[size_t(i)] = std::pow(10000.0f, -2.0f * float(i) / float(2 * half));
    const auto x = uniform(size_t(n * n_heads * head_dim), 1.0f, 5);
    std::vector<float> cs;
    cuda::rope_table(inv_freq, 1.3f, first_pos, n, cs);
    DeviceBuffer<float> dx(x), dcs(cs);
    cuda::rope_cuda(dx.data(), n, n_heads, head_dim, half, dcs.data());
    std::vector<float> ref = x, host = x;
    cpu::rope(ref.data(), n, n_heads, head_dim, inv_freq, 1.3f, first_pos);
    cuda::rope_host(host.data(), n, n_heads, head_dim, half, cs.data());
    const std::vector<float> got = dx.download();
    EXPECT_TRUE(same_bits(got.data(), ref.data(), ref.size())) << "head_dim " << head_dim;
    EXPECT_TRUE(same_bits(host.data(), ref.data(), ref.size())) << "head_dim " << head_dim;
    EXPECT_FALSE(same_bits(got.data(), x.data(), x.size()));  // it did rotate
    // q and k (2 heads here) in one launch: each the same bits as alone.
    const auto k = uniform(size_t(n * 2 * head_dim), 1.0f, 6);
    DeviceBuffer<float> dq(x), dk(k), dk1(k);
    cuda::rope2_cuda(dq.data(), n_heads, dk.data(), 2, n, head_dim, half, dcs.data());
    cuda::rope_cuda(dk1.data(), n, 2, head_dim, half, dcs.data());
    EXPECT_TRUE(same_bits(dq.download().data(), got.data(), got.size())) << "head_dim " << head_dim;
    EXPECT_TRUE(same_bits(dk.download().data(), dk1.download().data(), k.size())) << "head_dim " << head_dim;
  }
}

// The packed q|k|v product given as parts, split, biased and rotated in one launch: each value its
// parts added in order, then its bias, then the rotation cpu::rope does (partial rotary included),
// with or without biases.
TEST(OpsCuda, QkvRopeSplitsBiasesAndRotatesAsTheSeparateSteps) {
  KVAUDIT_REQUIRE_CUDA();
  for (const int head_dim : {8, 64}) {
    for (const bool biased : {false, true}) {
      const int hq = 4, hkv = 2, half = head_dim / 4, parts = 3;
      const int64_t n = 5, q_dim = hq * head_dim, kv_dim = hkv * head_dim, m = q_dim + 2 * kv_dim;
      std::vector<float> inv_freq(static_cast<size_t>(half));
      for (int i = 0; i < half; ++i) inv_freq[size_t(i)] = std::pow(10000.0f, -2.0f * float(i) / float(2 * half));
      std::vector<float> cs;
      cuda::rope_table(inv_freq, 1.0f, 7, n, cs);
      const auto p = uniform(size_t(parts * n * m), 3.0f, 11);  // [parts][n][m]
      const auto bias = uniform(size_t(m), 1.0f, 12);
      std::vector<float> ref(size_t(n * m));
      for (int64_t t = 0; t < n; ++t)
        for (int64_t j = 0; j < m; ++j) {
          float x = p[size_t(t * m + j)];
          for (int c = 1; c < parts; ++c) x += p[size_t(c * n * m + t * m + j)];
          ref[size_t(t * m + j)] = biased ? x + bias[size_t(j)] : x;
        }
      std::vector<float> q(size_t(n * q_dim)), k(size_t(n * kv_dim)), v(size_t(n * kv_dim));
      for (int64_t t = 0; t < n; ++t) {
        std::copy_n(ref.begin() + t * m, q_dim, q.begin() + t * q_dim);
        std::copy_n(ref.begin() + t * m + q_dim, kv_dim, k.begin() + t * kv_dim);
        std::copy_n(ref.begin() + t * m + q_dim + kv_dim, kv_dim, v.begin() + t * kv_dim);
      }
      cuda::rope_host(q.data(), n, hq, head_dim, half, cs.data());
      cuda::rope_host(k.data(), n, hkv, head_dim, half, cs.data());
      DeviceBuffer<float> dp(p), db(bias), dcs(cs), dq(q.size()), dk(k.size()), dv(v.size());
      const cuda::QkvBias b = biased ? cuda::QkvBias{db.data(), db.data() + q_dim, db.data() + q_dim + kv_dim}
                                     : cuda::QkvBias{};
      cuda::qkv_rope_cuda(cuda::PartSums{dp.data(), m, parts, n * m}, b, dq.data(), hq, dk.data(), dv.data(), hkv, n,
                          head_dim, half, dcs.data());
      EXPECT_TRUE(same_bits(dq.download().data(), q.data(), q.size())) << head_dim << " " << biased;
      EXPECT_TRUE(same_bits(dk.download().data(), k.data(), k.size())) << head_dim << " " << biased;
      EXPECT_TRUE(same_bits(dv.download().data(), v.data(), v.size())) << head_dim << " " << biased;
    }
  }
}

TEST(OpsCuda, GatedActivationsAndSoftcapMatchCpu) {
  KVAUDIT_REQUIRE_CUDA();
  const int64_t n = 4, d_ff = 77;
  const auto gate = uniform(size_t(n * d_ff), 6.0f, 6);
  const auto up = uniform(size_t(n * d_ff), 2.0f, 7);
  for (const auto act : {cpu::Activation::kSilu, cpu::Activation::kGeluTanh}) {
    DeviceBuffer<float> dg(gate), du(up);
    cuda::gated_activation_cuda(act, dg.data(), du.data(), n, d_ff, dg.data());
    std::vector<float> ref(gate.size());
    cpu::gated_activation(act, gate.data(), up.data(), n, d_ff, d_ff, ref.data());
    EXPECT_LE(rel_err(dg.download(), ref), kActivationRelTol);
  }
  DeviceBuffer<float> dx(gate);
  cuda::softcap_cuda(dx.data(), int64_t(gate.size()), 5.0f);
  std::vector<float> ref = gate;
  cpu::softcap_inplace(ref.data(), int64_t(ref.size()), 5.0f);
  EXPECT_LE(rel_err(dx.download(), ref), kActivationRelTol);
}

// Exact ops: residual add, bias, embedding (with gemma2's scale), row gather.
TEST(OpsCuda, ElementwiseOpsAreExact) {
  KVAUDIT_REQUIRE_CUDA();
  const int64_t n = 3, d = 10, vocab = 7;
  const auto x = uniform(size_t(n * d), 1.0f, 8), y = uniform(size_t(n * d), 1.0f, 9), b = uniform(size_t(d), 1.0f, 10);
  DeviceBuffer<float> dx(x), dy(y), db(b);
  cuda::add_inplace_cuda(dx.data(), dy.data(), n * d);
  cuda::add_bias_cuda(dx.data(), n, d, db.data());
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = (x[i] + y[i]) + b[i % size_t(d)];
  EXPECT_TRUE(same_bits(dx.download().data(), want.data(), want.size()));

  const auto table = uniform(size_t(vocab * d), 1.0f, 11);
  const std::vector<int> toks = {6, 0, 3};
  DeviceBuffer<float> dt(table), de(size_t(n * d));
  DeviceBuffer<int> dtok(toks);
  cuda::embed_cuda(dtok.data(), n, dt.data(), cuda::WeightType::kF32, d, std::sqrt(float(d)), de.data());
  const std::vector<float> emb = de.download();
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < d; ++j)
      ASSERT_EQ(emb[size_t(t * d + j)], table[size_t(toks[size_t(t)] * d + j)] * std::sqrt(float(d)));

  const std::vector<int64_t> rows = {2, 0};
  DeviceBuffer<int64_t> drows(rows);
  DeviceBuffer<float> dg(size_t(2 * d));
  cuda::gather_rows_cuda(de.data(), drows.data(), 2, d, dg.data());
  const std::vector<float> g = dg.download();
  EXPECT_TRUE(same_bits(g.data(), emb.data() + 2 * d, size_t(d)));
  EXPECT_TRUE(same_bits(g.data() + d, emb.data(), size_t(d)));
}

// Greedy decoding's argmax on the device is engine::argmax: ties to the first index, -inf rows,
// NaN (never taken, except at index 0), across the block's strided slices.
TEST(ArgmaxCuda, IsTheHostArgmaxWithTiesInfAndNaN) {
  KVAUDIT_REQUIRE_CUDA();
  const int64_t n = 1000;
  std::vector<std::vector<float>> rows;
  rows.push_back(uniform(size_t(n), 1.0f, 5));
  auto tie = uniform(size_t(n), 1.0f, 6);
  tie[700] = tie[301] = tie[999] = 2.0f;  // three threads' slices hold the maximum
  rows.push_back(tie);
  rows.push_back(std::vector<float>(size_t(n), -INFINITY));
  auto nan_mid = uniform(size_t(n), 1.0f, 7);
  nan_mid[1] = nan_mid[500] = std::nanf("");
  rows.push_back(nan_mid);
  auto nan_first = uniform(size_t(n), 1.0f, 8);
  nan_first[0] = std::nanf("");
  rows.push_back(nan_first);
  auto top_last = uniform(size_t(n), 1.0f, 9);
  top_last[n - 1] = 5.0f;
  rows.push_back(top_last);
  std::vector<float> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  DeviceBuffer<float> dx(flat);
  DeviceBuffer<int> dout(rows.size());
  cuda::argmax_rows_cuda(dx.data(), int64_t(rows.size()), n, dout.data());
  const std::vector<int> got = dout.download();
  for (size_t r = 0; r < rows.size(); ++r) EXPECT_EQ(got[r], argmax(rows[r].data(), n)) << "row " << r;
  EXPECT_EQ(got[1], 301);
  // A vocabulary of 50,000 in segments (a few rows): ties and NaN across segments, the maximum in
  // the last segment, an all-NaN segment.
  const int64_t v = 50000;
  std::vector<std::vector<float>> long_rows(4, uniform(size_t(v), 1.0f, 10));
  long_rows[0][40000] = long_rows[0][9000] = long_rows[0][4100] = 3.0f;
  long_rows[1][v - 1] = 4.0f;
  std::fill(long_rows[2].begin() + 4096, long_rows[2].begin() + 3 * 4096, std::nanf(""));
  long_rows[2][20000] = 5.0f;
  long_rows[3][0] = std::nanf("");
  std::vector<float> long_flat;
  for (const auto& r : long_rows) long_flat.insert(long_flat.end(), r.begin(), r.end());
  DeviceBuffer<float> dl(long_flat);
  DeviceBuffer<int> dlo(long_rows.size());
  cuda::argmax_rows_cuda(dl.data(), int64_t(long_rows.size()), v, dlo.data());
  const std::vector<int> lgot = dlo.download();
  for (size_t r = 0; r < long_rows.size(); ++r) EXPECT_EQ(lgot[r], argmax(long_rows[r].data(), v)) << "long row " << r;
  EXPECT_EQ(lgot[0], 4100);
  EXPECT_EQ(lgot[1], v - 1);
  EXPECT_EQ(lgot[3], 0);
}

// Which rows share a prefill tile (host only: runs without a device): runs of one slot at
// consecutive positions, cut from each run's first row into tiles of kAttnTileRows, in the order's
// order of their first rows; single rows, and rows whose positions skip, are left to the row kernel.
TEST(AttnTiles, RunsOfOneSequenceCutFromTheirFirstRow) {
  std::vector<cuda::AttnRow> rows;
  for (int64_t t = 0; t < 20; ++t) rows.push_back({0, 10 + t, 30});  // rows 0-19: a 20-row run
  rows.push_back({1, 5, 6});                                         // 20: a decode row
  rows.push_back({2, 0, 2});                                         // 21-22: a run of two
  rows.push_back({2, 1, 2});
  rows.push_back({3, 7, 10});  // 23, 24: positions that skip are no run
  rows.push_back({3, 9, 10});
  rows.push_back({4, 10, 12});  // 25: slot 4, then 26: slot 5 at the next position, no run
  rows.push_back({5, 11, 12});
  std::vector<int64_t> order(rows.size());
  std::iota(order.begin(), order.end(), int64_t(0));
  std::vector<cuda::AttnTile> tiles;
  std::vector<int64_t> rest;
  cuda::attn_tiles(rows, order, tiles, rest);
  const auto flat = [](const std::vector<cuda::AttnTile>& ts) {
    std::vector<int64_t> f;
    for (const auto& t : ts) f.insert(f.end(), {t.first, t.count});
    return f;
  };
  EXPECT_EQ(flat(tiles), (std::vector<int64_t>{0, 8, 8, 8, 16, 4, 21, 2}));
  EXPECT_EQ(rest, (std::vector<int64_t>{20, 23, 24, 25, 26}));
  // Another order: the tiles follow it by their runs' first rows, the rest keeps its order.
  std::reverse(order.begin(), order.end());
  cuda::attn_tiles(rows, order, tiles, rest);
  EXPECT_EQ(flat(tiles), (std::vector<int64_t>{21, 2, 0, 8, 8, 8, 16, 4}));
  EXPECT_EQ(rest, (std::vector<int64_t>{26, 25, 24, 23, 20}));
  cuda::attn_tiles({}, {}, tiles, rest);
  EXPECT_TRUE(tiles.empty() && rest.empty());
}

struct AttnCase {
  std::string name;
  cpu::AttentionParams p;
};

class AttentionCuda : public ::testing::TestWithParam<AttnCase> {};

// Two sequences in one launch: A prefills 600 rows after 5 cached ones (rows of 1 to 10 key chunks;
// enough blocks that the heads of a KV head share them on an H200), B decodes one row after 150 (3
// chunks); each against cpu::attention over the same cache, within tol; then the same rows in
// passes, in another order, in smaller launches: the same bits.
void expect_attention_matches_cpu(const cpu::AttentionParams& p, cuda::AttnMath math, double tol) {
  const int64_t q_dim = int64_t(p.n_heads) * p.head_dim, kv_dim = int64_t(p.n_kv_heads) * p.head_dim;
  struct Seq {
    int64_t first_pos, n_q;
  };
  const Seq seqs[] = {{5, 600}, {150, 1}};
  std::vector<float> q_all, ref_all;
  std::vector<DeviceBuffer<float>> dk, dv;
  std::vector<cuda::AttnRow> rows;
  std::vector<cuda::SlotKv> slots;
  int64_t max_pos = 0;
  for (size_t i = 0; i < 2; ++i) {
    const Seq s = seqs[i];
    const int64_t n_kv = s.first_pos + s.n_q;
    const auto q = uniform(size_t(s.n_q * q_dim), 1.0f, uint32_t(20 + i));
    const auto k = uniform(size_t(n_kv * kv_dim), 1.0f, uint32_t(30 + i));
    const auto v = uniform(size_t(n_kv * kv_dim), 1.0f, uint32_t(40 + i));
    std::vector<float> ref(q.size());
    cpu::attention(p, q.data(), s.n_q, s.first_pos, k.data(), v.data(), n_kv, ref.data());
    q_all.insert(q_all.end(), q.begin(), q.end());
    ref_all.insert(ref_all.end(), ref.begin(), ref.end());
    dk.emplace_back(k);
    dv.emplace_back(v);
    kv::KvLayout plain;  // fp32 rows, read directly
    plain.width = int(kv_dim);
    slots.push_back({{plain, reinterpret_cast<uint32_t*>(dk.back().data()), nullptr, nullptr},
                     {plain, reinterpret_cast<uint32_t*>(dv.back().data()), nullptr, nullptr}, false, false, false});
    for (int64_t t = 0; t < s.n_q; ++t) rows.push_back({int64_t(i), s.first_pos + t, n_kv});
    max_pos = std::max(max_pos, n_kv - 1);
  }
  DeviceBuffer<float> dq(q_all), dout(q_all.size());
  DeviceBuffer<cuda::AttnRow> drows(rows);
  DeviceBuffer<cuda::SlotKv> dslots(slots);
  cuda::attention_cuda(p, dq.data(), drows.data(), dslots.data(), int64_t(rows.size()), max_pos, dout.data(),
                       nullptr, math);
  const std::vector<float> got = dout.download();
  const double err = rel_err(got, ref_all);
  EXPECT_LE(err, tol);
  if (math == cuda::AttnMath::kFp16TensorCores && p.head_dim % 16 == 0) {
    EXPECT_GT(err, 0.0);  // the rounding really happened
    std::printf("fp16 tensor cores, head_dim %d: rel. error %.3g\n", p.head_dim, err);
  }
  // Prefill tiles (tensor cores, no window): A's 600 rows in 75 tiles decoding each chunk once for
  // eight rows, B's row alone in the row kernel; every row the row kernel's bits, with room for
  // 50,000 keys too (the tiles' partial sums in passes).
  if (math == cuda::AttnMath::kFp16TensorCores) {
    std::vector<int64_t> order(rows.size());
    std::iota(order.begin(), order.end(), int64_t(0));
    std::vector<cuda::AttnTile> tiles;
    std::vector<int64_t> rest;
    cuda::attn_tiles(rows, order, tiles, rest);
    ASSERT_EQ(tiles.size(), 75u);
    ASSERT_EQ(rest, std::vector<int64_t>{600});
    DeviceBuffer<cuda::AttnTile> dtiles(tiles);
    DeviceBuffer<int64_t> drest(rest);
    const cuda::AttnTiles at{dtiles.data(), int64_t(tiles.size()), drest.data(), int64_t(rest.size())};
    for (const int64_t room : {max_pos, int64_t(50000)}) {
      DeviceBuffer<float> dout_t(q_all.size());
      DeviceBuffer<uint16_t> dout_tb(q_all.size()), want_tb(q_all.size());
      cuda::attention_cuda(p, dq.data(), drows.data(), dslots.data(), int64_t(rows.size()), room, dout_t.data(), nullptr,
                           math, dout_tb.data(), &at);
      EXPECT_TRUE(same_bits(dout_t.download().data(), got.data(), got.size())) << "tiles, room " << room;
      cuda::to_bf16_cuda(dout_t.data(), int64_t(q_all.size()), want_tb.data());
      EXPECT_EQ(dout_tb.download(), want_tb.download()) << "tiles, room " << room;
    }
  }
  // Room for 50,000 keys: the rows' partial sums go through the scratch in passes of a few rows, and
  // not a bit changes.
  DeviceBuffer<float> dout1(q_all.size());
  cuda::attention_cuda(p, dq.data(), drows.data(), dslots.data(), int64_t(rows.size()), 50000, dout1.data(),
                       nullptr, math);
  EXPECT_TRUE(same_bits(dout1.download().data(), got.data(), got.size()));
  // The blocks taking the rows in another order (reversed), in passes too: the same bits.
  std::vector<int64_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(order.size() - 1 - i);
  DeviceBuffer<int64_t> dorder(order);
  for (const int64_t room : {max_pos, int64_t(50000)}) {
    DeviceBuffer<float> dout_r(q_all.size());
    cuda::attention_cuda(p, dq.data(), drows.data(), dslots.data(), int64_t(rows.size()), room, dout_r.data(),
                         dorder.data(), math);
    EXPECT_TRUE(same_bits(dout_r.download().data(), got.data(), got.size())) << "reversed, room " << room;
  }
  // A's last 8 rows alone (10 key chunks each): blocks take a few chunks (gqa7_hd128 on an H200: 4)
  // and the last of a row's blocks to finish combines them; the same bits, twice (the arrival
  // counts start again from zero), and the bf16 copy is to_bf16_cuda's.
  const size_t last8 = seqs[0].n_q - 8;
  for (int round = 0; round < 2; ++round) {
    DeviceBuffer<float> dout8{size_t(8 * q_dim)};
    DeviceBuffer<uint16_t> dout8b{size_t(8 * q_dim)}, want8b{size_t(8 * q_dim)};
    cuda::attention_cuda(p, dq.data() + last8 * q_dim, drows.data() + last8, dslots.data(), 8,
                         seqs[0].first_pos + seqs[0].n_q - 1, dout8.data(), nullptr, math, dout8b.data());
    EXPECT_TRUE(same_bits(dout8.download().data(), got.data() + last8 * q_dim, size_t(8 * q_dim))) << "round " << round;
    cuda::to_bf16_cuda(dout8.data(), 8 * q_dim, want8b.data());
    EXPECT_EQ(dout8b.download(), want8b.download()) << "round " << round;
  }
  // B's row alone: too few blocks for the heads of a KV head to share one, the same bits.
  DeviceBuffer<float> dout2{size_t(q_dim)};
  DeviceBuffer<uint16_t> dout2b{size_t(q_dim)}, want2b{size_t(q_dim)};
  cuda::attention_cuda(p, dq.data() + (rows.size() - 1) * q_dim, drows.data() + (rows.size() - 1), dslots.data(), 1,
                       seqs[1].first_pos, dout2.data(), nullptr, math, dout2b.data());
  EXPECT_TRUE(same_bits(dout2.download().data(), got.data() + (rows.size() - 1) * q_dim, size_t(q_dim)));
  cuda::to_bf16_cuda(dout2.data(), q_dim, want2b.data());
  EXPECT_EQ(dout2b.download(), want2b.download());
}

TEST_P(AttentionCuda, PrefillAndDecodeRowsMatchCpu) {
  KVAUDIT_REQUIRE_CUDA();
  expect_attention_matches_cpu(GetParam().p, cuda::AttnMath::kFp32, kAttentionRelTol);
}

// The same on fp16 tensor cores (fp32 where head_dim is not a multiple of 16: gqa_hd8).
TEST_P(AttentionCuda, PrefillAndDecodeRowsMatchCpuOnTensorCores) {
  KVAUDIT_REQUIRE_CUDA();
  const cpu::AttentionParams p = GetParam().p;
  expect_attention_matches_cpu(p, cuda::AttnMath::kFp16TensorCores,
                               p.head_dim % 16 == 0 ? kAttentionFp16RelTol : kAttentionRelTol);
}

cpu::AttentionParams attn_params(int n_heads, int n_kv_heads, int head_dim, float softcap, int64_t window) {
  cpu::AttentionParams p;
  p.n_heads = n_heads;
  p.n_kv_heads = n_kv_heads;
  p.head_dim = head_dim;
  p.scale = 1.0f / std::sqrt(float(head_dim));
  p.softcap = softcap;
  p.window = window;
  return p;
}

INSTANTIATE_TEST_SUITE_P(Ops, AttentionCuda,
                         ::testing::Values(AttnCase{"gqa_hd8", attn_params(4, 2, 8, 0, 0)},
                                           AttnCase{"mha_hd64", attn_params(2, 2, 64, 0, 0)},
                                           AttnCase{"gqa_hd256", attn_params(4, 1, 256, 0, 0)},
                                           AttnCase{"softcap_window", attn_params(4, 2, 16, 5.0f, 6)},
                                           AttnCase{"gqa7_hd128", attn_params(28, 4, 128, 0, 0)}),
                         [](const auto& info) { return info.param.name; });

// A measurement (run with --gtest_also_run_disabled_tests): one dependent launch priced by PDL's
// wait against a polled counter, in graph-captured chains of 256 launches.
TEST(OpsCuda, DISABLED_ChainSpike) {
  KVAUDIT_REQUIRE_CUDA();
  const char* names[] = {"pdl wait", "counter, trigger first", "counter, trigger after poll", "no wait"};
  for (int blocks : {1, 12, 128, 256, 1024})
    for (int mode = 0; mode < 4; ++mode) {
      const auto r = cuda::chain_spike(mode, blocks, 256, 21);
      std::printf("chain blocks=%4d %-28s %6.2f us/launch data %s\n", blocks, names[mode], r.us_per_launch,
                  r.data_ok ? "ok" : "WRONG");
      if (mode < 3) {
        EXPECT_TRUE(r.data_ok) << names[mode] << " blocks " << blocks;
      }
    }
}

}  // namespace
}  // namespace kvaudit::engine
