// The engine against transformers (tests/fixtures/models/README.md, tests/fixtures/smollm2/README.md):
// prefill logits (what `kvaudit logits` writes), the hook points, and greedy continuations.
//   rel_err(engine, ref) = max over all elements |engine - ref| / max over all elements |ref|
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "engine/generate.h"
#include "io/npy.h"
#include "model/model.h"

namespace kvaudit::engine {
namespace {

// fp32 weights: float32 compute vs a float64 reference; summation-order noise is ~1e-6.
constexpr double kFp32RelTol = 1e-4;
// bf16-stored weights, computed in fp32 after an exact upcast: the reference used the same
// upcast weights, so the bound is the fp32 one's; issue #2 grants 1e-3.
constexpr double kBf16RelTol = 1e-3;
// SmolLM2 Q4_1 dequantized to fp32 by two implementations (ours, gguf-py); 30 layers deep.
constexpr double kSmolRelTol = 1e-3;

const std::string kModels = std::string(KVAUDIT_FIXTURES) + "/models";

double rel_err(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return num / den;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

std::vector<float> prefill_logits(Backend& be, const std::vector<int>& tokens, const Hooks* hooks = nullptr) {
  Sequence seq(be.model().config, nullptr);
  const SeqInput in{&seq, tokens, true};
  return be.forward({&in, 1}, hooks).data;
}

struct GoldenCase {
  std::string name;  // fixture directory
  std::string key;   // manifest cases.<key>
  std::string dtype; // "fp32" | "bf16"
};

std::string case_name(const ::testing::TestParamInfo<GoldenCase>& info) {
  return info.param.key + "_" + info.param.dtype;
}

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, LogitsHooksAndGreedyMatchTransformers) {
  const GoldenCase gc = GetParam();
  const nlohmann::json manifest = read_json(kModels + "/manifest.json");
  const std::string dir = kModels + "/" + gc.name;
  const double tol = gc.dtype == "fp32" ? kFp32RelTol : kBf16RelTol;
  model::LoadOptions lo;
  lo.compute_sha256 = false;
  const model::Model m = model::load_model(dir, lo);
  auto be = make_backend(Device::kCpu, m);

  // Prefill logits of s0, s1, s2 (`kvaudit logits` semantics).
  for (int s = 0; s < 3; ++s) {
    const auto tokens = manifest["sequences"]["s" + std::to_string(s)].get<std::vector<int>>();
    const io::NpyArray ref = io::read_npy(dir + "/logits_s" + std::to_string(s) + ".npy");
    const std::vector<float> got = prefill_logits(*be, tokens);
    ASSERT_EQ(got.size(), ref.data.size());
    EXPECT_LE(rel_err(got.data(), ref.data.data(), got.size()), tol) << gc.name << " s" << s;
  }

  // Hook points on s1 (fp32 dirs): residual stream after each layer, keys before/after RoPE, values.
  if (gc.dtype == "fp32") {
    const auto s1 = manifest["sequences"]["s1"].get<std::vector<int>>();
    const int n_layers = m.config.n_layers, T = int(s1.size()), w = m.config.kv_dim(), d = m.config.d_model;
    std::vector<float> hidden(size_t(n_layers * T * d)), k_pre(size_t(n_layers * T * w)), k_post(k_pre.size()),
        v(k_pre.size());
    Hooks hooks;
    hooks.on_residual = [&](int64_t, int l, int64_t, const float* h, int64_t n, int) {
      std::copy(h, h + n * d, hidden.begin() + l * T * d);
    };
    hooks.on_kv = [&](int64_t, int l, KvStage stage, int64_t, const float* rows, int64_t n, int) {
      auto& dst = stage == KvStage::kKeyPreRope ? k_pre : stage == KvStage::kKeyPostRope ? k_post : v;
      std::copy(rows, rows + n * w, dst.begin() + l * T * w);
    };
    prefill_logits(*be, s1, &hooks);
    // Reference hidden rows: l < n_layers = input of layer l (0 = embeddings), n_layers = final-norm
    // input; the hook gives layer l's output = reference row l + 1.
    const io::NpyArray ref_h = io::read_npy(dir + "/internals_s1_hidden.npy");
    for (int l = 0; l < n_layers; ++l)
      EXPECT_LE(rel_err(hidden.data() + l * T * d, ref_h.data.data() + (l + 1) * T * d, size_t(T * d)), kFp32RelTol)
          << "residual after layer " << l;
    for (auto [file, got] : {std::pair{"k_pre", &k_pre}, {"k_post", &k_post}, {"v", &v}}) {
      const io::NpyArray ref = io::read_npy(dir + "/internals_s1_" + file + ".npy");
      ASSERT_EQ(ref.data.size(), got->size()) << file;
      for (int l = 0; l < n_layers; ++l)
        EXPECT_LE(rel_err(got->data() + l * T * w, ref.data.data() + l * T * w, size_t(T * w)), kFp32RelTol)
            << file << " layer " << l;
    }
  }

  // Greedy 12-token continuation, identical.
  const auto want = manifest["cases"][gc.key][gc.dtype]["greedy_new_ids"].get<std::vector<int>>();
  const std::vector<GenerateRequest> reqs = {{manifest["greedy"]["prompt"].get<std::vector<int>>(), nullptr}};
  GenerateOptions opt;
  opt.max_new_tokens = int(want.size());
  EXPECT_EQ(generate(*be, reqs, opt)[0].tokens, want);
}

std::vector<GoldenCase> golden_cases() {
  std::vector<GoldenCase> out;
  for (const std::string key : {"llama", "llama3", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "olmo2"}) {
    out.push_back({key, key, "fp32"});
    out.push_back({key + "-bf16", key, "bf16"});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, ::testing::ValuesIn(golden_cases()), case_name);

// ------------------------------------------------------------------ SmolLM2-135M (real weights)

std::string smollm2_path() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/kvaudit/SmolLM2-135M-Instruct.Q4_1.gguf";
}

class SmolLM2 : public ::testing::Test {
 protected:
  // One thread: results do not depend on the thread count (fixed reduction order, see
  // Forward.ThreadCountDoesNotChangeBits), and on a loaded shared 2-core machine OpenMP's spinning
  // barriers make two threads several times slower than one.
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(smollm2_path())) return;
    saved_threads_ = omp_get_max_threads();
    omp_set_num_threads(1);
    model::LoadOptions lo;
    lo.compute_sha256 = false;
    model_ = std::make_unique<model::Model>(model::load_model(smollm2_path(), lo));
  }
  static void TearDownTestSuite() {
    if (model_) omp_set_num_threads(saved_threads_);
    model_.reset();
  }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << smollm2_path() << " absent (scripts/fetch-models.sh fetches it)";
  }
  static std::unique_ptr<model::Model> model_;
  static int saved_threads_;
};
std::unique_ptr<model::Model> SmolLM2::model_;
int SmolLM2::saved_threads_ = 1;

TEST_F(SmolLM2, LogitsAndGreedyMatchTransformers) {
  const std::string fx = std::string(KVAUDIT_FIXTURES) + "/smollm2";
  const nlohmann::json man = read_json(fx + "/manifest.json");
  const auto prompt = man["prompt_ids"].get<std::vector<int>>();
  auto be = make_backend(Device::kCpu, *model_);
  const int64_t V = model_->config.n_vocab;
  const std::vector<float> got = prefill_logits(*be, prompt);
  ASSERT_EQ(got.size(), prompt.size() * size_t(V));

  // top-1 at every position, top-64 and full rows within kSmolRelTol
  const auto topk_ids = man["topk_ids"].get<std::vector<std::vector<int>>>();
  const io::NpyArray topk = io::read_npy(fx + "/topk_logits.npy");
  const int64_t K = topk.shape[1];
  double num = 0, den = 0;
  for (size_t t = 0; t < prompt.size(); ++t) {
    EXPECT_EQ(argmax(got.data() + t * size_t(V), V), topk_ids[t][0]) << "position " << t;
    for (int64_t k = 0; k < K; ++k) {
      const float ref = topk.data[t * size_t(K) + size_t(k)];
      num = std::max(num, double(std::fabs(got[t * size_t(V) + size_t(topk_ids[t][size_t(k)])] - ref)));
      den = std::max(den, double(std::fabs(ref)));
    }
  }
  EXPECT_LE(num / den, kSmolRelTol);
  const io::NpyArray full = io::read_npy(fx + "/full_logits.npy");
  const auto positions = man["full_positions"].get<std::vector<int>>();
  std::vector<float> rows;
  for (int p : positions) rows.insert(rows.end(), got.begin() + p * V, got.begin() + (p + 1) * V);
  EXPECT_LE(rel_err(rows.data(), full.data.data(), rows.size()), kSmolRelTol);

  // Greedy 32 tokens (EOS not honoured, as the reference), identical.
  const auto want = man["greedy_new_ids"].get<std::vector<int>>();
  const std::vector<GenerateRequest> reqs = {{prompt, nullptr}};
  GenerateOptions opt;
  opt.max_new_tokens = int(want.size());
  EXPECT_EQ(generate(*be, reqs, opt)[0].tokens, want);
}

// The real model alone vs inside a batch of mixed-length prompts: bit-identical logits, and the
// greedy continuation is deterministic run to run and batch to batch.
TEST_F(SmolLM2, BatchIsBitIdenticalAndGreedyDeterministic) {
  auto be = make_backend(Device::kCpu, *model_);
  const int64_t V = model_->config.n_vocab;
  const std::vector<int> prompt = {1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365};
  std::vector<std::vector<int>> prompts = {prompt};
  for (int i = 0; i < 5; ++i) prompts.push_back(std::vector<int>(prompt.begin() + i, prompt.begin() + 2 + 2 * i));

  Sequence alone(model_->config, nullptr);
  const SeqInput one{&alone, prompt, false};
  const Logits ref = be->forward({&one, 1});
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<SeqInput> batch;
  for (const auto& p : prompts) {
    seqs.push_back(std::make_unique<Sequence>(model_->config, nullptr));
    batch.push_back({seqs.back().get(), p, false});
  }
  const Logits together = be->forward(batch);
  EXPECT_EQ(std::memcmp(ref.last(0), together.last(0), size_t(V) * sizeof(float)), 0);

  std::vector<GenerateRequest> reqs;
  for (const auto& p : prompts) reqs.push_back({p, nullptr});
  GenerateOptions opt;
  opt.max_new_tokens = 6;
  const auto first = generate(*be, std::span(reqs).first(1), opt);
  opt.batch_size = 6;
  const auto batched = generate(*be, reqs, opt);
  EXPECT_EQ(first[0].tokens, batched[0].tokens);
  ASSERT_EQ(first[0].tokens.size(), 6u);
}

}  // namespace
}  // namespace kvaudit::engine
