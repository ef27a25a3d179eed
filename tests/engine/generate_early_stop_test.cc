// engine::generate's `decided` callback (the eval's verdict-aware early stop): a request it ends
// keeps a prefix of its full-length tokens, and the requests that share its batches are unchanged.
#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "kv/policy.h"
#include "tiny_model.h"

namespace kvaudit::engine {
namespace {

using testing::make_tiny_model;
using testing::random_tokens;

std::vector<GenerateRequest> requests(const model::Model& m) {
  std::vector<GenerateRequest> reqs;
  const auto int4 = std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int4:token:asym"));
  for (int i = 0; i < 9; ++i)
    reqs.push_back({random_tokens(size_t(2 + i % 4), m.config.n_vocab, uint32_t(70 + i)), i % 2 ? int4 : nullptr});
  return reqs;
}

TEST(GenerateEarlyStop, StoppedRequestsKeepAPrefixAndOthersAreUnchanged) {
  const model::Model m = make_tiny_model("llama");
  auto be = make_backend(Device::kCpu, m);
  const auto reqs = requests(m);
  GenerateOptions opt;
  opt.max_new_tokens = 12;
  opt.batch_size = 4;
  const auto full = generate(*be, reqs, opt);

  // Even requests stop after their 3rd token, request 3 after its 1st; the rest never.
  const auto stop_after = [](size_t r) { return r == 3 ? 1u : r % 2 == 0 ? 3u : 0u; };
  std::vector<size_t> seen(reqs.size(), 0);
  std::vector<size_t> calls_after_stop(reqs.size(), 0);
  opt.decided = [&](size_t r, int) {
    calls_after_stop[r] += stop_after(r) != 0 && seen[r] >= stop_after(r);
    return stop_after(r) != 0 && ++seen[r] == stop_after(r);
  };
  const auto early = generate(*be, reqs, opt);
  for (size_t r = 0; r < reqs.size(); ++r) {
    ASSERT_EQ(full[r].finish, FinishReason::kLength) << r;  // the tiny model has no stop ids here
    EXPECT_EQ(calls_after_stop[r], 0u) << r;                 // a stopped request is never stepped again
    if (stop_after(r) == 0) {
      EXPECT_EQ(early[r].tokens, full[r].tokens) << r;
      EXPECT_EQ(early[r].finish, FinishReason::kLength) << r;
    } else {
      EXPECT_EQ(early[r].finish, FinishReason::kDecided) << r;
      ASSERT_EQ(early[r].tokens.size(), stop_after(r)) << r;
      EXPECT_EQ(early[r].tokens, std::vector<int>(full[r].tokens.begin(), full[r].tokens.begin() + long(stop_after(r))))
          << r;
    }
  }
}

// The callback is not asked about the token that reaches max_new_tokens: that request ends by
// length, so kDecided always means tokens were saved.
TEST(GenerateEarlyStop, LastTokenFinishesByLength) {
  const model::Model m = make_tiny_model("qwen2");
  auto be = make_backend(Device::kCpu, m);
  const std::vector<GenerateRequest> reqs = {{random_tokens(4, m.config.n_vocab, 5), nullptr}};
  GenerateOptions opt;
  opt.max_new_tokens = 3;
  int asked = 0;
  opt.decided = [&](size_t, int) { return ++asked == 3; };
  const auto out = generate(*be, reqs, opt);
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(out[0].tokens.size(), 3u);
  EXPECT_EQ(out[0].finish, FinishReason::kLength);
}

}  // namespace
}  // namespace kvaudit::engine

namespace kvaudit::engine {
namespace {

// The model's context bounds every position: a generation ends where the next token would have
// none (by length, C - P + 1 tokens for a prompt of P and a context of C: the last one computed at
// position C - 1), a prompt past it is refused before any work, and so is a forward past it.
TEST(GenerateContext, StopsAtTheModelsContextAndRefusesPromptsPastIt) {
  model::Model m = make_tiny_model("llama");
  m.config.max_position = 12;
  auto be = make_backend(Device::kCpu, m);
  std::vector<GenerateRequest> reqs = {{random_tokens(5, m.config.n_vocab, 3), nullptr},
                                       {random_tokens(12, m.config.n_vocab, 4), nullptr}};
  GenerateOptions opt;
  opt.max_new_tokens = 100;
  const auto out = generate(*be, reqs, opt);
  EXPECT_EQ(out[0].tokens.size(), 12u - 5u + 1u);
  EXPECT_EQ(out[0].finish, FinishReason::kLength);
  EXPECT_EQ(out[1].tokens.size(), 1u);  // a prompt that fills the context: one token, from position 11
  reqs.push_back({random_tokens(13, m.config.n_vocab, 5), nullptr});
  EXPECT_THROW(generate(*be, reqs, opt), UsageError);

  Sequence seq(m.config, nullptr);
  const std::vector<int> twelve = random_tokens(12, m.config.n_vocab, 6);
  SeqInput in{&seq, twelve, false};
  be->forward({&in, 1});
  const int one = 1;
  SeqInput past{&seq, {&one, 1}, false};
  try {
    be->forward({&past, 1});
    ADD_FAILURE() << "position 12 of a 12-token context was computed";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("would reach 13 tokens, past tiny-llama's context of 12"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kvaudit::engine
