// The CUDA forward pass: the tiny transformers fixtures' logits (fp32 and bf16 weights), batch
// invariance on the device with mixed KV schemes, and CUDA vs CPU greedy generation.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "cuda_test_util.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/lt_product.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "engine/tiny_model.h"
#include "io/npy.h"
#include "kv/policy.h"
#include "model/model.h"

namespace kvaudit::engine {
namespace {

using cuda_testing::rel_err;
using cuda_testing::same_bits;
using testing::make_tiny_model;
using testing::random_tokens;

// fp32 weights: fp32 compute vs transformers' float64 reference (as tests/engine/golden_test.cc).
constexpr double kFp32RelTol = 1e-4;
// The fp32 fixtures run with bf16-rounded weights (2^-9 relative per weight) against the fp32
// reference: issue 10 grants 2e-2, with the top-1 token agreeing at >= 99% of positions.
constexpr double kBf16WeightsRelTol = 2e-2;
constexpr double kBf16Top1Agreement = 0.99;
// bf16 weights and bf16 activations (WeightPrecision::kBf16Lt) against the fp32 reference.
constexpr double kBf16ActivationsRelTol = 3e-2;
// The -bf16 fixtures: weights stored bf16, kept bf16 on the device (exact), reference computed on
// the same upcast weights: golden_test.cc's bound.
constexpr double kBf16StoredRelTol = 1e-3;
// CUDA vs CPU on the same fp32 tiny model: both fp32, different fixed summation orders.
constexpr double kCudaVsCpuRelTol = 1e-5;

const std::string kModels = std::string(KVAUDIT_FIXTURES) + "/models";

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

std::vector<float> prefill_logits(Backend& be, const std::vector<int>& tokens) {
  Sequence seq(be.model().config, nullptr);
  const SeqInput in{&seq, tokens, true};
  return be.forward({&in, 1}).data;
}

model::Model load_fixture(const std::string& dir) {
  model::LoadOptions lo;
  lo.compute_sha256 = false;
  return model::load_model(kModels + "/" + dir, lo);
}

class CudaGolden : public ::testing::TestWithParam<std::string> {};

// Prefill logits of s0..s2 within kFp32RelTol of transformers with fp32 weights on the device,
// and the 12-token greedy continuation identical.
TEST_P(CudaGolden, Fp32WeightsMatchTransformers) {
  KVAUDIT_REQUIRE_CUDA();
  const std::string key = GetParam();
  const nlohmann::json manifest = read_json(kModels + "/manifest.json");
  const model::Model m = load_fixture(key);
  auto be = make_backend(Device::kCuda, m, {0, WeightPrecision::kFp32});
  for (int s = 0; s < 3; ++s) {
    const auto tokens = manifest["sequences"]["s" + std::to_string(s)].get<std::vector<int>>();
    const io::NpyArray ref = io::read_npy(kModels + "/" + key + "/logits_s" + std::to_string(s) + ".npy");
    const std::vector<float> got = prefill_logits(*be, tokens);
    ASSERT_EQ(got.size(), ref.data.size());
    EXPECT_LE(rel_err(got.data(), ref.data.data(), got.size()), kFp32RelTol) << key << " s" << s;
  }
  const auto want = manifest["cases"][key]["fp32"]["greedy_new_ids"].get<std::vector<int>>();
  const std::vector<GenerateRequest> reqs = {{manifest["greedy"]["prompt"].get<std::vector<int>>(), nullptr}};
  GenerateOptions opt;
  opt.max_new_tokens = int(want.size());
  EXPECT_EQ(generate(*be, reqs, opt)[0].tokens, want);
}

// Top-1 agreement of the fp32 fixtures run with bf16 weights against transformers' fp32 logits.
struct Top1 {
  int positions = 0, agree = 0;
  double worst_rel = 0;
  double worst_disagreement_margin = 0;  // reference's top-1 minus its logit of our pick, / max |ref|
};

Top1 bf16_weights_top1(const std::string& key, WeightPrecision precision = WeightPrecision::kBf16) {
  const nlohmann::json manifest = read_json(kModels + "/manifest.json");
  const model::Model m = load_fixture(key);
  auto be = make_backend(Device::kCuda, m, {0, precision});
  Top1 r;
  for (int s = 0; s < 3; ++s) {
    const auto tokens = manifest["sequences"]["s" + std::to_string(s)].get<std::vector<int>>();
    const io::NpyArray ref = io::read_npy(kModels + "/" + key + "/logits_s" + std::to_string(s) + ".npy");
    const std::vector<float> got = prefill_logits(*be, tokens);
    EXPECT_EQ(got.size(), ref.data.size());
    r.worst_rel = std::max(r.worst_rel, rel_err(got.data(), ref.data.data(), got.size()));
    double amax = 0;
    for (float x : ref.data) amax = std::max(amax, double(std::fabs(x)));
    const int64_t V = m.config.n_vocab;
    for (size_t t = 0; t < tokens.size(); ++t, ++r.positions) {
      const float* rt = ref.data.data() + t * V;
      const int want = argmax(rt, V), pick = argmax(got.data() + t * V, V);
      if (want == pick) {
        ++r.agree;
      } else {
        r.worst_disagreement_margin = std::max(r.worst_disagreement_margin, double(rt[want] - rt[pick]) / amax);
      }
    }
  }
  return r;
}

// Within kBf16WeightsRelTol of the fp32 reference, and a top-1 token differs only where the
// reference itself is a near-tie (its margin inside that tolerance band).
TEST_P(CudaGolden, Bf16WeightsStayCloseAndDifferOnlyAtNearTies) {
  KVAUDIT_REQUIRE_CUDA();
  const Top1 r = bf16_weights_top1(GetParam());
  EXPECT_LE(r.worst_rel, kBf16WeightsRelTol);
  EXPECT_GT(r.worst_rel, 0.0);  // the weights really were rounded
  EXPECT_LE(r.worst_disagreement_margin, 2 * kBf16WeightsRelTol) << r.positions - r.agree << " of " << r.positions;
}

// Tensor cores (bf16 weights, activations as a bf16 pair): the same bounds as the fp32-arithmetic path.
TEST_P(CudaGolden, Bf16TensorCoresStayCloseAndDifferOnlyAtNearTies) {
  KVAUDIT_REQUIRE_CUDA();
  const Top1 r = bf16_weights_top1(GetParam(), WeightPrecision::kBf16Tc);
  EXPECT_LE(r.worst_rel, kBf16WeightsRelTol);
  EXPECT_LE(r.worst_disagreement_margin, 2 * kBf16WeightsRelTol) << r.positions - r.agree << " of " << r.positions;
}

// cuBLASLt (bf16 weights and activations, as transformers runs a bf16 model): the activations'
// rounding adds to the weights' (rounding x to bf16 measured 2.07e-2 on llama3 in the tensor-core
// path), so a wider bound; a top-1 token still differs only where the reference is a near-tie.
TEST_P(CudaGolden, Bf16LtStaysCloseAndDiffersOnlyAtNearTies) {
  KVAUDIT_REQUIRE_CUDA();
  const Top1 r = bf16_weights_top1(GetParam(), WeightPrecision::kBf16Lt);
  EXPECT_LE(r.worst_rel, kBf16ActivationsRelTol);
  EXPECT_LE(r.worst_disagreement_margin, 2 * kBf16ActivationsRelTol) << r.positions - r.agree << " of " << r.positions;
}

// The -bf16 fixtures (weights stored bf16): kAuto keeps them bf16, which is exact.
TEST_P(CudaGolden, Bf16StoredWeightsMatchTransformers) {
  KVAUDIT_REQUIRE_CUDA();
  const std::string key = GetParam();
  const nlohmann::json manifest = read_json(kModels + "/manifest.json");
  const model::Model m = load_fixture(key + "-bf16");
  auto be = make_backend(Device::kCuda, m);
  for (int s = 0; s < 3; ++s) {
    const auto tokens = manifest["sequences"]["s" + std::to_string(s)].get<std::vector<int>>();
    const io::NpyArray ref = io::read_npy(kModels + "/" + key + "-bf16/logits_s" + std::to_string(s) + ".npy");
    const std::vector<float> got = prefill_logits(*be, tokens);
    ASSERT_EQ(got.size(), ref.data.size());
    EXPECT_LE(rel_err(got.data(), ref.data.data(), got.size()), kBf16StoredRelTol) << key << " s" << s;
  }
  const auto want = manifest["cases"][key]["bf16"]["greedy_new_ids"].get<std::vector<int>>();
  const std::vector<GenerateRequest> reqs = {{manifest["greedy"]["prompt"].get<std::vector<int>>(), nullptr}};
  GenerateOptions opt;
  opt.max_new_tokens = int(want.size());
  EXPECT_EQ(generate(*be, reqs, opt)[0].tokens, want);
}

// Fixture directories (llama3: a llama with Llama-3.1 RoPE scaling) and the tiny models' archs.
const std::vector<std::string> kFixtures = {"llama", "llama3", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "olmo2"};
const std::vector<std::string> kArchs = {"llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "olmo2"};

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaGolden, ::testing::ValuesIn(kFixtures));

// Issue 10: top-1 >= 99% with bf16 weights, over every position of all eight fixtures.
void expect_top1_agreement_over_all_fixtures(WeightPrecision precision, const char* label) {
  int positions = 0, agree = 0;
  for (const std::string& key : kFixtures) {
    const Top1 r = bf16_weights_top1(key, precision);
    positions += r.positions;
    agree += r.agree;
  }
  std::printf("%s: top-1 agrees with transformers fp32 at %d of %d positions\n", label, agree, positions);
  EXPECT_GE(double(agree) / positions, kBf16Top1Agreement) << agree << " of " << positions;
}

TEST(CudaGoldenAll, Bf16WeightsTop1AgreementOverAllFixtures) {
  KVAUDIT_REQUIRE_CUDA();
  expect_top1_agreement_over_all_fixtures(WeightPrecision::kBf16, "bf16 weights");
}

TEST(CudaGoldenAll, Bf16TensorCoresTop1AgreementOverAllFixtures) {
  KVAUDIT_REQUIRE_CUDA();
  expect_top1_agreement_over_all_fixtures(WeightPrecision::kBf16Tc, "bf16 tensor cores");
}

TEST(CudaGoldenAll, Bf16LtTop1AgreementOverAllFixtures) {
  KVAUDIT_REQUIRE_CUDA();
  expect_top1_agreement_over_all_fixtures(WeightPrecision::kBf16Lt, "bf16-lt (cuBLASLt)");
}

class CudaTiny : public ::testing::TestWithParam<std::string> {};

// 16 mixed-length prompts, each with one of several KV schemes, give the very same bits alone and
// in one batch, in prefill and in three decode steps after it; in the batch, some sequences have
// their room made up front (Sequence::expect_tokens), one too little, so that it grows later.
void expect_mixed_batch_of_16_bit_identical_to_alone(const std::string& arch, WeightPrecision precision, int widen = 1) {
  const model::Model m = make_tiny_model(arch, 1, widen);
  auto be = make_backend(Device::kCuda, m, {0, precision});
  const int64_t V = m.config.n_vocab;
  const std::vector<std::string> specs = {"fp16", "int4:token:asym", "int3:tensor:sym@pre", "int2:head", "kivi4:g8:r16", "fp8e4m3"};
  constexpr int kBatch = 16, kDecodeSteps = 3;
  std::vector<std::vector<int>> prompts;
  std::vector<std::shared_ptr<const kv::KvPolicy>> pols;
  for (int i = 0; i < kBatch; ++i) {
    prompts.push_back(random_tokens(size_t(1 + (i * 7) % 23), int(V), uint32_t(100 + i)));
    pols.push_back(std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse(specs[size_t(i) % specs.size()], m.config.n_layers)));
  }
  std::vector<std::vector<float>> alone(kBatch);  // [kBatch][(1 + kDecodeSteps) * V]
  for (int i = 0; i < kBatch; ++i) {
    Sequence seq(m.config, pols[size_t(i)]);
    SeqInput in{&seq, prompts[size_t(i)], false};
    Logits out = be->forward({&in, 1});
    alone[size_t(i)].assign(out.last(0), out.last(0) + V);
    for (int s = 0; s < kDecodeSteps; ++s) {
      const int tok = (i + s) % int(V);
      SeqInput step{&seq, {&tok, 1}, false};
      out = be->forward({&step, 1});
      alone[size_t(i)].insert(alone[size_t(i)].end(), out.last(0), out.last(0) + V);
    }
  }
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<SeqInput> batch;
  for (int i = 0; i < kBatch; ++i) {
    seqs.push_back(std::make_unique<Sequence>(m.config, pols[size_t(i)], i));
    const int64_t need = int64_t(prompts[size_t(i)].size()) + kDecodeSteps;
    seqs.back()->expect_tokens(i % 3 == 0 ? 0 : i % 3 == 1 ? need : need - 2);
    batch.push_back({seqs.back().get(), prompts[size_t(i)], false});
  }
  Logits out = be->forward(batch);
  for (int i = 0; i < kBatch; ++i) ASSERT_TRUE(same_bits(out.last(size_t(i)), alone[size_t(i)].data(), size_t(V))) << "prompt " << i;
  std::vector<int> toks(kBatch);
  for (int s = 0; s < kDecodeSteps; ++s) {
    for (int i = 0; i < kBatch; ++i) {
      toks[size_t(i)] = (i + s) % int(V);
      batch[size_t(i)].tokens = {&toks[size_t(i)], 1};
    }
    out = be->forward(batch);
    for (int i = 0; i < kBatch; ++i)
      ASSERT_TRUE(same_bits(out.last(size_t(i)), alone[size_t(i)].data() + (s + 1) * V, size_t(V)))
          << "prompt " << i << " step " << s;
  }
  // The schemes do change the logits (else the mix would prove nothing).
  EXPECT_FALSE(same_bits(alone[0].data(), alone[1].data(), size_t(V)));
}

TEST_P(CudaTiny, BatchOf16WithMixedSchemesIsBitIdenticalToAlone) {
  KVAUDIT_REQUIRE_CUDA();
  expect_mixed_batch_of_16_bit_identical_to_alone(GetParam(), WeightPrecision::kFp32);
}

TEST_P(CudaTiny, BatchOf16WithMixedSchemesIsBitIdenticalToAloneOnTensorCores) {
  KVAUDIT_REQUIRE_CUDA();
  expect_mixed_batch_of_16_bit_identical_to_alone(GetParam(), WeightPrecision::kBf16Tc);
}

TEST_P(CudaTiny, BatchOf16WithMixedSchemesIsBitIdenticalToAloneThroughCublasLt) {
  KVAUDIT_REQUIRE_CUDA();
  expect_mixed_batch_of_16_bit_identical_to_alone(GetParam(), WeightPrecision::kBf16Lt);
}

// The same at products wide enough for the streaming kernels (d_model 256, head_dim 64), which a
// sequence alone may run in its decode steps (the q/k/v product rotating its own tiles, the gate/up
// product applying the activation) and the batch does not: still the very same bits.
TEST(CudaForward, BatchOf16IsBitIdenticalToAloneWhereDecodeStreams) {
  KVAUDIT_REQUIRE_CUDA();
  for (const char* arch : {"llama", "qwen2"}) {
    SCOPED_TRACE(arch);
    expect_mixed_batch_of_16_bit_identical_to_alone(arch, WeightPrecision::kBf16Lt, 8);
  }
  // Which way a one-row q/k/v product went is lt_product's choice on its probe (timed; tools set
  // KVAUDIT_CUDA_LT_GEMV=force to have the streaming kernels run): said, not required.
  const int64_t m = (4 + 2 * 2) * 64, k = 256;
  const cuda::DeviceBuffer<uint16_t> w{std::vector<uint16_t>(size_t(m * k))}, x{std::vector<uint16_t>(size_t(k))};
  const std::optional<cuda::GemvKernel> g = cuda::lt_product_gemv(w.data(), m, x.data(), 1, k, k, 1, m);
  std::printf("[   INFO   ] one row's q/k/v product %s\n", g && g->tensor ? "rotated its own tiles" : "ran apart from RoPE");
}

// The 16-bit baseline keeps K/V on the device (fp32 rows, quantize-on-write's plain layout): 16
// mixed-length prompts alone vs together, bit-identical; the host caches stay empty and the
// sequence reports the device bytes.
TEST_P(CudaTiny, BaselineBatchOf16IsBitIdenticalToAloneAndKeepsItsCacheOnTheDevice) {
  KVAUDIT_REQUIRE_CUDA();
  const model::Model m = make_tiny_model(GetParam());
  auto be = make_backend(Device::kCuda, m, {0, WeightPrecision::kFp32});
  auto cpu = make_backend(Device::kCpu, m);
  const int64_t V = m.config.n_vocab;
  constexpr int kBatch = 16;
  std::vector<std::vector<int>> prompts;
  for (int i = 0; i < kBatch; ++i) prompts.push_back(random_tokens(size_t(1 + (i * 5) % 19), int(V), uint32_t(300 + i)));
  std::vector<std::vector<float>> alone(kBatch);  // [kBatch][2 * V]: prefill's last, one decode step
  for (int i = 0; i < kBatch; ++i) {
    Sequence seq(m.config, nullptr);
    SeqInput in{&seq, prompts[size_t(i)], false};
    Logits out = be->forward({&in, 1});
    alone[size_t(i)].assign(out.last(0), out.last(0) + V);
    const int tok = i % int(V);
    SeqInput step{&seq, {&tok, 1}, false};
    out = be->forward({&step, 1});
    alone[size_t(i)].insert(alone[size_t(i)].end(), out.last(0), out.last(0) + V);
  }
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<SeqInput> batch;
  for (int i = 0; i < kBatch; ++i) {
    seqs.push_back(std::make_unique<Sequence>(m.config, nullptr, i));
    batch.push_back({seqs.back().get(), prompts[size_t(i)], false});
  }
  Logits out = be->forward(batch);
  for (int i = 0; i < kBatch; ++i) ASSERT_TRUE(same_bits(out.last(size_t(i)), alone[size_t(i)].data(), size_t(V))) << i;
  std::vector<int> toks(kBatch);
  for (int i = 0; i < kBatch; ++i) {
    toks[size_t(i)] = i % int(V);
    batch[size_t(i)].tokens = {&toks[size_t(i)], 1};
  }
  out = be->forward(batch);
  for (int i = 0; i < kBatch; ++i) ASSERT_TRUE(same_bits(out.last(size_t(i)), alone[size_t(i)].data() + V, size_t(V))) << i;
  const int64_t w = m.config.kv_dim(), rows = int64_t(prompts[15].size()) + 1;
  EXPECT_EQ(seqs[15]->k_cache(0).size(), 0);
  EXPECT_EQ(seqs[15]->kv_bytes(), size_t(m.config.n_layers * 2 * rows * w) * sizeof(float));
  // Its cache lives on the device: the CPU refuses to continue it.
  const int tok = 1;
  const SeqInput next{seqs[15].get(), {&tok, 1}, false};
  EXPECT_THROW(cpu->forward({&next, 1}), UsageError);
}

// Quantize-on-write on the device against the host caches (the CPU quantizers, the path every
// scheme had before): the same logits bit for bit over a prefill and three decode steps, for every
// scheme the device stores and a per-layer mix; the device bytes are the packed size.
TEST_P(CudaTiny, DeviceKvIsBitIdenticalToTheHostPath) {
  KVAUDIT_REQUIRE_CUDA();
  const model::Model m = make_tiny_model(GetParam());
  auto dev = make_backend(Device::kCuda, m, {0, WeightPrecision::kFp32});
  BackendOptions host_opt{0, WeightPrecision::kFp32};
  host_opt.cuda_kv_on_host = true;
  auto host = make_backend(Device::kCuda, m, host_opt);
  const int64_t V = m.config.n_vocab;
  const auto prompt = random_tokens(9, int(V), 77);
  for (const std::string spec :
       {"bf16", "int4:token:asym", "int3:tensor:sym", "int2:head", "int5:group:g8:sym", "fp8e4m3",
        "fp8e5m2:scale=dynamic", "int4:token:asym;layers[0].v=fp8e5m2;layers[1].k=int8", "kivi2:g4:r4",
        "int4:channel:sym:g2:r6", "int3:token:r5", "kivi4:g2:r2;layers[1].v=int4:group:g8:r3"}) {
    auto pol = std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse(spec, m.config.n_layers));
    Sequence a(m.config, pol), b(m.config, pol);
    SeqInput ia{&a, prompt, true}, ib{&b, prompt, true};
    for (int step = 0; step < 4; ++step) {
      const Logits la = dev->forward({&ia, 1}), lb = host->forward({&ib, 1});
      ASSERT_EQ(la.data.size(), lb.data.size());
      ASSERT_TRUE(same_bits(la.data.data(), lb.data.data(), la.data.size())) << spec << " step " << step;
      static const int toks[4] = {3, 1, 4, 1};
      ia = {&a, {&toks[step], 1}, false};
      ib = {&b, {&toks[step], 1}, false};
    }
    EXPECT_EQ(a.k_cache(0).size(), 0) << spec;  // on the device only
    EXPECT_EQ(b.k_cache(0).size(), 12) << spec;
    // Device bytes: every quantized row packed at the scheme's bits plus its fp32 parameters
    // (kv/layout.h; `channel`: per block), the fp16 ring of a residual window; below the 16-bit
    // cache's size except for bf16, which is that size.
    const kv::CacheGeometry g{m.config.n_kv_heads, m.config.head_dim};
    size_t want = 0;
    for (int l = 0; l < m.config.n_layers; ++l)
      for (const kv::Role role : {kv::Role::K, kv::Role::V}) {
        const kv::KvLayout L = *pol->layout(l, role, g);
        const int64_t q = L.quantized_rows(12);
        const int64_t params = L.tensor ? 3 : L.channel() ? q / L.block_rows * L.block_params() : q * L.row_params();
        want += size_t(q * L.row_words() + params) * sizeof(float) + size_t(L.residual * L.width) * 2;
      }
    EXPECT_EQ(a.kv_bytes(), want) << spec;
    const size_t bytes16 = size_t(m.config.n_layers * 2 * 12 * m.config.kv_dim() * 2);
    if (spec == "bf16") {
      EXPECT_EQ(a.kv_bytes(), bytes16);
    } else if (spec.find(":r") == std::string::npos) {  // windows and blocks this short save nothing
      EXPECT_LT(a.kv_bytes(), bytes16) << spec;
    }
  }
}

// Same tiny model, CUDA fp32 vs the CPU reference: logits of a chunked prefill with a pre-RoPE
// scheme within kCudaVsCpuRelTol, and greedy continuations of several prompts identical.
TEST_P(CudaTiny, MatchesCpuLogitsAndGreedyTokens) {
  KVAUDIT_REQUIRE_CUDA();
  const model::Model m = make_tiny_model(GetParam());
  auto gpu = make_backend(Device::kCuda, m, {0, WeightPrecision::kFp32});
  auto cpu = make_backend(Device::kCpu, m);
  const auto tokens = random_tokens(14, m.config.n_vocab, 8);
  for (const std::string spec : {"fp16", "int8:token:asym@pre"}) {
    auto pol = std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse(spec, m.config.n_layers));
    Sequence sg(m.config, pol), sc(m.config, pol);
    std::vector<float> got, want;
    for (auto [lo, hi] : {std::pair{0, 9}, {9, 10}, {10, 14}}) {
      const auto part = std::span<const int>(tokens).subspan(size_t(lo), size_t(hi - lo));
      const SeqInput ig{&sg, part, true}, ic{&sc, part, true};
      const auto g = gpu->forward({&ig, 1}).data;
      const auto c = cpu->forward({&ic, 1}).data;
      got.insert(got.end(), g.begin(), g.end());
      want.insert(want.end(), c.begin(), c.end());
    }
    EXPECT_LE(rel_err(got, want), kCudaVsCpuRelTol) << spec;
  }
  std::vector<GenerateRequest> reqs;
  for (uint32_t i = 0; i < 4; ++i) reqs.push_back({random_tokens(3 + 4 * i, m.config.n_vocab, 50 + i), nullptr});
  GenerateOptions opt;
  opt.max_new_tokens = 16;
  const auto a = generate(*gpu, reqs, opt);
  const auto b = generate(*cpu, reqs, opt);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(a[i].tokens, b[i].tokens) << "prompt " << i;
}

INSTANTIATE_TEST_SUITE_P(Engine, CudaTiny, ::testing::ValuesIn(kArchs));

// A sequence prefilled on the CPU and continued on CUDA: the device rows are rebuilt from the
// host caches, so its decode logits match the CPU's own continuation.
TEST(CudaForward, ContinuesASequenceStartedOnTheCpu) {
  KVAUDIT_REQUIRE_CUDA();
  const model::Model m = make_tiny_model("qwen3");
  auto gpu = make_backend(Device::kCuda, m, {0, WeightPrecision::kFp32});
  auto cpu = make_backend(Device::kCpu, m);
  auto pol = std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int4:token:asym@pre", m.config.n_layers));
  const auto tokens = random_tokens(10, m.config.n_vocab, 9);
  Sequence a(m.config, pol), b(m.config, pol);
  const SeqInput pa{&a, tokens, false}, pb{&b, tokens, false};
  cpu->forward({&pa, 1});
  cpu->forward({&pb, 1});
  const int tok = 7;
  const SeqInput da{&a, {&tok, 1}, false}, db{&b, {&tok, 1}, false};
  const auto got = gpu->forward({&da, 1}).data;
  const auto want = cpu->forward({&db, 1}).data;
  EXPECT_LE(rel_err(got, want), kCudaVsCpuRelTol);
  EXPECT_EQ(a.position(), 11);
  EXPECT_EQ(a.k_cache(0).size(), 11);
}

// `--compat paper` with `@pre` keys on the k-norm architectures (qwen3 per head, olmo2 over the
// projection): the cache takes the keys before the k norm, which then runs on the rows it returns
// (cpu/forward.cc). CUDA follows: chunked prefill and decode logits, and the hooks' rotated keys,
// within kCudaVsCpuRelTol of the CPU.
TEST(CudaForward, CompatPaperPreRopeKeysTakeTheKNormAfterTheCache) {
  KVAUDIT_REQUIRE_CUDA();
  for (const std::string arch : {"qwen3", "olmo2"}) {
    const model::Model m = make_tiny_model(arch);
    auto gpu = make_backend(Device::kCuda, m, {0, WeightPrecision::kFp32});
    auto cpu = make_backend(Device::kCpu, m);
    kv::KvPolicy paper = kv::KvPolicy::parse("int4:token:asym@pre", m.config.n_layers);
    paper.set_compat_paper(true);
    auto pol = std::make_shared<const kv::KvPolicy>(paper);
    auto plain_pre = std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int4:token:asym@pre", m.config.n_layers));
    const auto tokens = random_tokens(12, m.config.n_vocab, 21);
    const int w = m.config.kv_dim();
    std::vector<float> got, want, other, hook_g, hook_c;
    auto hooks_into = [&](std::vector<float>& dst) {
      Hooks h;
      h.on_kv = [&dst, w](int64_t, int layer, KvStage stage, int64_t, const float* rows, int64_t n, int) {
        if (layer == 1 && stage == KvStage::kKeyPostRope) dst.insert(dst.end(), rows, rows + n * w);
      };
      return h;
    };
    const Hooks hg = hooks_into(hook_g), hc = hooks_into(hook_c);
    Sequence sg(m.config, pol), sc(m.config, pol), so(m.config, plain_pre);
    for (auto [lo, hi] : {std::pair{0, 8}, {8, 9}, {9, 12}}) {
      const auto part = std::span<const int>(tokens).subspan(size_t(lo), size_t(hi - lo));
      const SeqInput ig{&sg, part, true}, ic{&sc, part, true}, io{&so, part, true};
      const auto g = gpu->forward({&ig, 1}, &hg).data;
      const auto c = cpu->forward({&ic, 1}, &hc).data;
      const auto o = gpu->forward({&io, 1}).data;
      got.insert(got.end(), g.begin(), g.end());
      want.insert(want.end(), c.begin(), c.end());
      other.insert(other.end(), o.begin(), o.end());
    }
    EXPECT_LE(rel_err(got, want), kCudaVsCpuRelTol) << arch;
    EXPECT_LE(rel_err(hook_g, hook_c), kCudaVsCpuRelTol) << arch;
    EXPECT_GT(rel_err(got, other), 1e-4) << arch;  // the compat rule does change the result
  }
}

// Hooks see the same values as on the CPU, and the post-RoPE keys are what the cache stores.
TEST(CudaForward, HooksSeeKeysValuesAndResidual) {
  KVAUDIT_REQUIRE_CUDA();
  const model::Model m = make_tiny_model("qwen2");
  const auto tokens = random_tokens(6, m.config.n_vocab, 3);
  const int w = m.config.kv_dim(), d = m.config.d_model;
  auto collect = [&](Device dev, bool kv_on_host, std::vector<float>& k_post, std::vector<float>& resid,
                     std::vector<float>& cached) {
    BackendOptions opt{0, WeightPrecision::kFp32};
    opt.cuda_kv_on_host = kv_on_host;
    auto be = make_backend(dev, m, opt);
    Hooks hooks;
    hooks.on_kv = [&](int64_t, int layer, KvStage stage, int64_t, const float* rows, int64_t n, int) {
      if (layer == 1 && stage == KvStage::kKeyPostRope) k_post.assign(rows, rows + n * w);
    };
    hooks.on_residual = [&](int64_t, int layer, int64_t, const float* h, int64_t n, int) {
      if (layer == 2) resid.assign(h, h + n * d);
    };
    Sequence seq(m.config, nullptr);
    SeqInput in{&seq, tokens, false};
    be->forward({&in, 1}, &hooks);
    if (seq.k_cache(1).size() > 0) cached.assign(seq.k_cache(1).rows(), seq.k_cache(1).rows() + 6 * w);
  };
  std::vector<float> gk, gr, gc, hk, hr, hc, ck, cr, cc;
  collect(Device::kCuda, false, gk, gr, gc);  // the cache on the device: hooks from host copies
  collect(Device::kCuda, true, hk, hr, hc);   // the host caches
  collect(Device::kCpu, false, ck, cr, cc);
  ASSERT_EQ(gk.size(), size_t(6 * w));
  ASSERT_EQ(gr.size(), size_t(6 * d));
  EXPECT_TRUE(gc.empty());
  EXPECT_TRUE(same_bits(hc.data(), hk.data(), hk.size()));
  EXPECT_TRUE(same_bits(gk.data(), hk.data(), hk.size()));
  EXPECT_TRUE(same_bits(gr.data(), hr.data(), hr.size()));
  EXPECT_LE(rel_err(gk, ck), kCudaVsCpuRelTol);
  EXPECT_LE(rel_err(gr, cr), kCudaVsCpuRelTol);
}

// forward_greedy (argmax on the device, only the last rows' logits) gives the host argmax of
// forward's logits, for a batch mixing a prefill that asks for every row's logits and decodes.
TEST(CudaForward, GreedyOnTheDeviceIsTheArgmaxOfTheLogits) {
  KVAUDIT_REQUIRE_CUDA();
  const model::Model m = make_tiny_model("llama");
  auto be = make_backend(Device::kCuda, m, {0, WeightPrecision::kFp32});
  auto pol = std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int4:token:asym", m.config.n_layers));
  std::vector<std::unique_ptr<Sequence>> a, b;
  std::vector<std::vector<int>> prompts;
  for (uint32_t i = 0; i < 5; ++i) {
    prompts.push_back(random_tokens(2 + 3 * i, m.config.n_vocab, 60 + i));
    a.push_back(std::make_unique<Sequence>(m.config, i % 2 ? pol : nullptr));
    b.push_back(std::make_unique<Sequence>(m.config, i % 2 ? pol : nullptr));
  }
  std::vector<int> next(5);
  for (int step = 0; step < 3; ++step) {
    std::vector<SeqInput> ia, ib;
    for (size_t i = 0; i < 5; ++i) {
      const std::span<const int> toks = step == 0 ? std::span<const int>(prompts[i]) : std::span<const int>(&next[i], 1);
      ia.push_back({a[i].get(), toks, i == 0});
      ib.push_back({b[i].get(), toks, i == 0});
    }
    const Logits la = be->forward(ia);
    const std::vector<int> got = be->forward_greedy(ib);
    ASSERT_EQ(got.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      ASSERT_EQ(got[i], argmax(la.last(i), la.n_vocab)) << "input " << i << " step " << step;
      next[i] = got[i];
    }
  }
}

// Decode steps replayed as CUDA graphs give the eager steps' bits: 6 sequences of mixed schemes and
// prompt lengths, 300 steps (past four attention chunks of 64 keys and the caches' first growth at
// 256 rows, KIVI blocks closing every 8 steps), logits and greedy calls interleaved. With every
// scheme stored on the device the steps are replayed; a host-path scheme keeps the calls eager.
void expect_graphs_give_the_eager_bits(WeightPrecision precision, bool with_host_scheme) {
  const model::Model m = make_tiny_model("qwen2");  // q/k/v biases too
  BackendOptions eager_opt{0, precision};
  eager_opt.cuda_graphs = false;
  BackendOptions graph_opt{0, precision};
  const std::vector<std::string> specs = {"fp16",     "int4:token:asym", "kivi4:g8:r16",
                                          "int2:head", "fp8e4m3",         with_host_scheme ? "int3:tensor:sym@pre" : "fp8e5m2"};
  constexpr int kSeqs = 6, kSteps = 300;
  struct Run {
    std::vector<float> logits;
    std::vector<int> tokens;
  };
  const auto run = [&](const BackendOptions& opt) {
    auto be = make_backend(Device::kCuda, m, opt);
    std::vector<std::unique_ptr<Sequence>> seqs;
    std::vector<std::vector<int>> prompts;
    std::vector<SeqInput> batch;
    for (int i = 0; i < kSeqs; ++i) {
      auto pol = std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse(specs[size_t(i)], m.config.n_layers));
      seqs.push_back(std::make_unique<Sequence>(m.config, pol, i));
      prompts.push_back(random_tokens(size_t(3 + 5 * i), m.config.n_vocab, uint32_t(200 + i)));
    }
    for (int i = 0; i < kSeqs; ++i) batch.push_back({seqs[size_t(i)].get(), prompts[size_t(i)], false});
    Run r;
    std::vector<int> next(kSeqs);
    const Logits first = be->forward(batch);
    for (int i = 0; i < kSeqs; ++i) next[size_t(i)] = argmax(first.last(size_t(i)), m.config.n_vocab);
    for (int step = 0; step < kSteps; ++step) {
      for (int i = 0; i < kSeqs; ++i) batch[size_t(i)].tokens = {&next[size_t(i)], 1};
      if (step % 3 == 2) {
        next = be->forward_greedy(batch);
      } else {
        const Logits out = be->forward(batch);
        r.logits.insert(r.logits.end(), out.data.begin(), out.data.end());
        for (int i = 0; i < kSeqs; ++i) next[size_t(i)] = argmax(out.last(size_t(i)), m.config.n_vocab);
      }
      r.tokens.insert(r.tokens.end(), next.begin(), next.end());
    }
    return r;
  };
  const Run eager = run(eager_opt);
  const int64_t replays = cuda_graph_replays();
  const Run graphed = run(graph_opt);
  ASSERT_EQ(eager.logits.size(), graphed.logits.size());
  EXPECT_TRUE(same_bits(eager.logits.data(), graphed.logits.data(), eager.logits.size()));
  EXPECT_EQ(eager.tokens, graphed.tokens);
  if (with_host_scheme)
    EXPECT_EQ(cuda_graph_replays(), replays);
  else
    EXPECT_GT(cuda_graph_replays() - replays, kSteps / 2);
}

TEST(CudaForward, DecodeGraphsGiveTheEagerBits) {
  KVAUDIT_REQUIRE_CUDA();
  expect_graphs_give_the_eager_bits(WeightPrecision::kFp32, false);
  expect_graphs_give_the_eager_bits(WeightPrecision::kBf16Lt, false);
  expect_graphs_give_the_eager_bits(WeightPrecision::kFp32, true);
}

TEST(CudaForward, RejectsBadInputAndIsTheDefaultDevice) {
  KVAUDIT_REQUIRE_CUDA();
  EXPECT_EQ(default_device(), Device::kCuda);
  const model::Model m = make_tiny_model("llama");
  auto be = make_backend(Device::kCuda, m);
  EXPECT_EQ(be->device(), Device::kCuda);
  Sequence seq(m.config, nullptr);
  const std::vector<int> bad = {1, m.config.n_vocab};
  const SeqInput in{&seq, bad, false};
  EXPECT_THROW(be->forward({&in, 1}), UsageError);
  EXPECT_EQ(seq.position(), 0);
}

// The batch a run takes by default: as many sequences as half the free memory holds, at most 512.
TEST(CudaForward, AutoBatchSizeFillsTheDeviceWithinItsMemory) {
  KVAUDIT_REQUIRE_CUDA();
  const model::Model m = make_tiny_model("llama");
  auto be = make_backend(Device::kCuda, m);
  EXPECT_EQ(be->auto_batch_size(1280), 512);           // a tiny model's caches fit many times over
  EXPECT_EQ(be->auto_batch_size(int64_t(1) << 40), 1);  // one sequence whatever its length
  EXPECT_LT(be->auto_batch_size(int64_t(1) << 26), 512);
}

}  // namespace
}  // namespace kvaudit::engine
