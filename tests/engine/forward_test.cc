// The CPU forward pass on tiny random models of every architecture: batch invariance (bit-identical
// logits alone vs inside a ragged batch), chunked prefill / decode == one prefill, continuous
// batching == one at a time, hooks, and input validation.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>

#include "core/error.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "kv/policy.h"
#include "tiny_model.h"

namespace kvaudit::engine {
namespace {

using testing::make_tiny_model;
using testing::random_tokens;

bool same_bits(const float* a, const float* b, int64_t n) { return std::memcmp(a, b, size_t(n) * sizeof(float)) == 0; }

// Logits of every token of `tokens` fed as one prefill on a fresh sequence.
std::vector<float> prefill_all(Backend& be, const std::vector<int>& tokens) {
  Sequence seq(be.model().config, nullptr);
  SeqInput in{&seq, tokens, true};
  return be.forward({&in, 1}).data;
}

class ForwardArch : public ::testing::TestWithParam<std::string> {};

// SPEC.md §4 "ragged, no padding effects": 16 mixed-length prompts in one batch give the very same
// bits as each prompt alone, in prefill and in the decode steps that follow.
TEST_P(ForwardArch, BatchOf16IsBitIdenticalToAlone) {
  const model::Model m = make_tiny_model(GetParam());
  auto be = make_backend(Device::kCpu, m);
  const int64_t V = m.config.n_vocab;
  constexpr int kBatch = 16, kDecodeSteps = 3;
  std::vector<std::vector<int>> prompts;
  for (int i = 0; i < kBatch; ++i) prompts.push_back(random_tokens(size_t(1 + (i * 7) % 23), int(V), uint32_t(100 + i)));

  // Alone: prefill, then kDecodeSteps fixed tokens; keep the last-token logits of each call.
  std::vector<std::vector<float>> alone(kBatch);  // [kBatch][(1 + kDecodeSteps) * V]
  for (int i = 0; i < kBatch; ++i) {
    Sequence seq(m.config, nullptr);
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
  // Together.
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<SeqInput> batch;
  for (int i = 0; i < kBatch; ++i) {
    seqs.push_back(std::make_unique<Sequence>(m.config, nullptr, i));
    batch.push_back({seqs.back().get(), prompts[size_t(i)], false});
  }
  Logits out = be->forward(batch);
  for (int i = 0; i < kBatch; ++i) ASSERT_TRUE(same_bits(out.last(size_t(i)), alone[size_t(i)].data(), V)) << "prompt " << i;
  std::vector<int> toks(kBatch);
  for (int s = 0; s < kDecodeSteps; ++s) {
    for (int i = 0; i < kBatch; ++i) {
      toks[size_t(i)] = (i + s) % int(V);
      batch[size_t(i)].tokens = {&toks[size_t(i)], 1};
    }
    out = be->forward(batch);
    for (int i = 0; i < kBatch; ++i)
      ASSERT_TRUE(same_bits(out.last(size_t(i)), alone[size_t(i)].data() + (s + 1) * V, V)) << "prompt " << i << " step " << s;
  }
}

// Prefill in chunks, then token by token, equals one prefill over the whole sequence. Every op is
// row-wise with a reduction order independent of the chunk, so the values are bit-identical.
TEST_P(ForwardArch, ChunkedPrefillAndDecodeEqualOnePrefill) {
  const model::Model m = make_tiny_model(GetParam());
  auto be = make_backend(Device::kCpu, m);
  const int64_t V = m.config.n_vocab;
  const auto tokens = random_tokens(20, int(V), 7);  // longer than the gemma2-like window (6)
  const auto whole = prefill_all(*be, tokens);

  Sequence seq(m.config, nullptr);
  std::vector<float> pieces;
  const std::vector<std::pair<size_t, size_t>> chunks = {{0, 5}, {5, 12}, {12, 13}, {13, 14}, {14, 20}};
  for (auto [b, e] : chunks) {
    SeqInput in{&seq, std::span<const int>(tokens).subspan(b, e - b), true};
    const Logits out = be->forward({&in, 1});
    pieces.insert(pieces.end(), out.data.begin(), out.data.end());
  }
  ASSERT_EQ(pieces.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(pieces[i], whole[i]) << "row " << i / size_t(V);
  EXPECT_EQ(seq.position(), 20);
  EXPECT_EQ(seq.tokens(), tokens);
}

// Continuous batching (batch 4, 10 requests finishing at different times) == batch size 1.
TEST_P(ForwardArch, ContinuousBatchingMatchesOneAtATime) {
  const model::Model m = make_tiny_model(GetParam());
  auto be = make_backend(Device::kCpu, m);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 10; ++i) reqs.push_back({random_tokens(size_t(2 + i % 5), m.config.n_vocab, uint32_t(40 + i)), nullptr});
  GenerateOptions opt;
  opt.max_new_tokens = 4 + 0;
  opt.stop_ids = {3, 5, 7, 11, 13};  // some requests stop early, others run to the limit
  opt.batch_size = 1;
  const auto one = generate(*be, reqs, opt);
  opt.batch_size = 4;
  std::vector<std::vector<int>> streamed(reqs.size());
  opt.on_token = [&](size_t r, int t) { streamed[r].push_back(t); };
  const auto four = generate(*be, reqs, opt);
  for (size_t r = 0; r < reqs.size(); ++r) {
    EXPECT_EQ(one[r].tokens, four[r].tokens) << r;
    EXPECT_EQ(one[r].stop_id, four[r].stop_id) << r;
    EXPECT_EQ(streamed[r], four[r].tokens) << r;
    EXPECT_LE(four[r].tokens.size(), 4u);
  }
  opt.on_token = nullptr;
  opt.batch_size = 0;  // the backend's choice: the CPU's kCpuBatch, the same tokens
  EXPECT_EQ(be->auto_batch_size(100), Backend::kCpuBatch);
  const auto automatic = generate(*be, reqs, opt);
  for (size_t r = 0; r < reqs.size(); ++r) EXPECT_EQ(one[r].tokens, automatic[r].tokens) << r;
  opt.batch_size = -1;
  EXPECT_THROW(generate(*be, reqs, opt), UsageError);
}

INSTANTIATE_TEST_SUITE_P(Engine, ForwardArch,
                         ::testing::Values("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "olmo2"));

// Work is split across threads by output feature and by (sequence, head), never inside a dot
// product, so the thread count cannot change a value.
TEST(Forward, ThreadCountDoesNotChangeBits) {
  const model::Model m = make_tiny_model("gemma2");
  auto be = make_backend(Device::kCpu, m);
  const auto tokens = random_tokens(17, m.config.n_vocab, 5);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = prefill_all(*be, tokens);
  omp_set_num_threads(3);
  const auto three = prefill_all(*be, tokens);
  omp_set_num_threads(saved);
  ASSERT_EQ(one.size(), three.size());
  EXPECT_TRUE(same_bits(one.data(), three.data(), int64_t(one.size())));
}

// `@pre` (SPEC.md §3): the cache holds quantized un-rotated keys and the engine rotates the rows
// it returns. Per-token scales do not depend on chunking, so prefill in pieces, decode steps and one
// prefill give the same bits, which checks that the rotated copy follows every append.
TEST(Forward, PreRopeKeysAreStoredUnrotatedAndRotatedForAttention) {
  const model::Model m = make_tiny_model("qwen3");
  auto be = make_backend(Device::kCpu, m);
  const auto tokens = random_tokens(12, m.config.n_vocab, 8);
  auto pre = std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int4:token:asym@pre", m.config.n_layers));
  ASSERT_TRUE(pre->keys_pre_rope(0));
  const int w = m.config.kv_dim();
  std::vector<float> hook_pre, hook_post;  // layer 0 keys, [12, w]
  Hooks hooks;
  hooks.on_kv = [&](int64_t, int layer, KvStage stage, int64_t, const float* rows, int64_t n, int) {
    if (layer == 0 && stage == KvStage::kKeyPreRope) hook_pre.insert(hook_pre.end(), rows, rows + n * w);
    if (layer == 0 && stage == KvStage::kKeyPostRope) hook_post.insert(hook_post.end(), rows, rows + n * w);
  };
  Sequence whole(m.config, pre), pieces(m.config, pre);
  const SeqInput all{&whole, tokens, true};
  const std::vector<float> ref = be->forward({&all, 1}).data;
  std::vector<float> got;
  for (auto [lo, hi] : {std::pair{0, 7}, {7, 8}, {8, 9}, {9, 12}}) {
    const SeqInput in{&pieces, std::span<const int>(tokens).subspan(size_t(lo), size_t(hi - lo)), true};
    const auto out = be->forward({&in, 1}, &hooks).data;
    got.insert(got.end(), out.begin(), out.end());
  }
  EXPECT_TRUE(same_bits(got.data(), ref.data(), int64_t(ref.size())));
  // The cache holds the un-rotated keys, int4-rounded: within half a step of max-min over 15 levels.
  const float* cached = pieces.k_cache(0).rows();
  double err_pre = 0, err_post = 0;
  for (size_t i = 0; i < hook_pre.size(); ++i) {
    err_pre = std::max(err_pre, double(std::fabs(cached[i] - hook_pre[i])));
    err_post = std::max(err_post, double(std::fabs(cached[i] - hook_post[i])));
  }
  float range = 0;
  for (float x : hook_pre) range = std::max(range, std::fabs(x));
  EXPECT_LE(err_pre, 2 * range / 15 / 2 + 1e-6);
  EXPECT_GT(err_post, err_pre);
}

// SPEC.md §4: every sequence may carry its own KV scheme in one batch, with no effect on the others.
TEST(Forward, MixedKvSchemesInOneBatchEqualAlone) {
  const model::Model m = make_tiny_model("llama");
  auto be = make_backend(Device::kCpu, m);
  const int64_t V = m.config.n_vocab;
  const std::vector<std::string> specs = {"fp16", "int4:token:asym", "int3:tensor:sym@pre", "int2:head"};
  std::vector<std::vector<float>> alone;
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<std::vector<int>> prompts;
  std::vector<SeqInput> batch;
  for (size_t i = 0; i < specs.size(); ++i) {
    auto pol = std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse(specs[i], m.config.n_layers));
    prompts.push_back(random_tokens(5 + 3 * i, int(V), uint32_t(60 + i)));
    Sequence s(m.config, pol);
    const SeqInput in{&s, prompts.back(), true};
    alone.push_back(be->forward({&in, 1}).data);
    seqs.push_back(std::make_unique<Sequence>(m.config, pol));
  }
  for (size_t i = 0; i < specs.size(); ++i) batch.push_back({seqs[i].get(), prompts[i], true});
  const Logits out = be->forward(batch);
  for (size_t i = 0; i < specs.size(); ++i) {
    ASSERT_EQ(out.rows_of(i) * V, int64_t(alone[i].size()));
    EXPECT_TRUE(same_bits(out.row(out.first_row[i]), alone[i].data(), int64_t(alone[i].size()))) << specs[i];
  }
  // The quantized schemes do change the logits (the test would pass vacuously otherwise).
  EXPECT_FALSE(same_bits(alone[0].data(), alone[1].data(), V) && same_bits(alone[2].data(), alone[0].data(), V));
}

TEST(Forward, GreedyGenerationIsDeterministicAndStops) {
  const model::Model m = make_tiny_model("llama");
  auto be = make_backend(Device::kCpu, m);
  const std::vector<GenerateRequest> reqs = {{random_tokens(5, m.config.n_vocab, 1), nullptr}};
  GenerateOptions opt;
  opt.max_new_tokens = 8;
  const auto a = generate(*be, reqs, opt);
  ASSERT_EQ(a[0].tokens.size(), 8u);
  EXPECT_EQ(a[0].finish, FinishReason::kLength);
  // Make the third generated token a stop id: generation ends before it.
  opt.stop_ids = {a[0].tokens[2]};
  const auto b = generate(*be, reqs, opt);
  const auto first_stop = std::find(a[0].tokens.begin(), a[0].tokens.end(), a[0].tokens[2]) - a[0].tokens.begin();
  EXPECT_EQ(b[0].finish, FinishReason::kStop);
  EXPECT_EQ(b[0].stop_id, a[0].tokens[2]);
  EXPECT_EQ(b[0].tokens, std::vector<int>(a[0].tokens.begin(), a[0].tokens.begin() + first_stop));
}

TEST(Forward, HooksSeePreAndPostRopeKeysValuesAndResidual) {
  const model::Model m = make_tiny_model("qwen2");
  auto be = make_backend(Device::kCpu, m);
  const auto tokens = random_tokens(6, m.config.n_vocab, 3);
  int kv_calls = 0, res_calls = 0;
  std::vector<float> pre, post;  // layer 1 keys
  Hooks hooks;
  hooks.on_kv = [&](int64_t seq, int layer, KvStage stage, int64_t first, const float* rows, int64_t n, int width) {
    ++kv_calls;
    EXPECT_EQ(seq, 9);
    EXPECT_EQ(first, 0);
    EXPECT_EQ(n, 6);
    EXPECT_EQ(width, m.config.kv_dim());
    if (layer == 1 && stage == KvStage::kKeyPreRope) pre.assign(rows, rows + n * width);
    if (layer == 1 && stage == KvStage::kKeyPostRope) post.assign(rows, rows + n * width);
  };
  hooks.on_residual = [&](int64_t, int layer, int64_t, const float*, int64_t n, int d) {
    EXPECT_EQ(layer, res_calls);
    EXPECT_EQ(d, m.config.d_model);
    ++res_calls;
  };
  Sequence seq(m.config, nullptr, 9);
  SeqInput in{&seq, tokens, false};
  be->forward({&in, 1}, &hooks);
  EXPECT_EQ(kv_calls, 3 * m.config.n_layers);
  EXPECT_EQ(res_calls, m.config.n_layers);
  // Position 0 is not rotated; later positions are, and the cache holds the rotated keys.
  const int w = m.config.kv_dim();
  for (int c = 0; c < w; ++c) EXPECT_EQ(pre[size_t(c)], post[size_t(c)]);
  EXPECT_NE(pre[size_t(w)], post[size_t(w)]);
  EXPECT_TRUE(same_bits(seq.k_cache(1).rows(), post.data(), 6 * w));
}

TEST(Forward, RejectsBadInput) {
  const model::Model m = make_tiny_model("llama");
  auto be = make_backend(Device::kCpu, m);
  Sequence seq(m.config, nullptr);
  const std::vector<int> bad = {1, m.config.n_vocab};
  SeqInput in{&seq, bad, false};
  EXPECT_THROW(be->forward({&in, 1}), UsageError);
  EXPECT_EQ(seq.position(), 0);  // nothing appended
  SeqInput empty{&seq, {}, false};
  EXPECT_THROW(be->forward({&empty, 1}), UsageError);
  EXPECT_THROW(make_backend(Device::kCuda, m), UsageError);
  EXPECT_THROW(parse_device("tpu"), UsageError);
}

}  // namespace
}  // namespace kvaudit::engine
