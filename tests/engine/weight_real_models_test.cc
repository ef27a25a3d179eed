// Issue 14 on the real GGUF models of scripts/fetch-models.sh (skipped when absent): logits of the
// stored-format weights are bit-identical to those of the fp32-expanded load (LoadOptions::
// expand_f32), over a prefill with every position's logits and decode steps. SmolLM2-135M is Q4_1
// with a Q8_0 embedding; Qwen2.5-Coder-0.5B Q4_K_M mixes Q4_K, Q6_K and legacy types.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "../common/test_files.h"
#include "engine/engine.h"
#include "io/gguf.h"
#include "model/model.h"

namespace kvaudit::engine {
namespace {

std::vector<float> logits(const std::string& path, bool expand) {
  model::LoadOptions opt;
  opt.compute_sha256 = false;
  opt.expand_f32 = expand;
  const model::Model m = model::load_model(path, opt);
  auto be = make_backend(Device::kCpu, m, {});
  Sequence seq(m.config, nullptr);
  std::vector<int> prompt;
  for (int i = 0; i < 24; ++i) prompt.push_back((i * 7919 + 13) % m.config.n_vocab);
  SeqInput in{&seq, prompt, true};
  std::vector<float> all = be->forward({&in, 1}).data;
  for (int step = 0; step < 3; ++step) {
    const std::vector<int> one{prompt[size_t(step)]};
    SeqInput next{&seq, one, false};
    const auto out = be->forward({&next, 1}).data;
    all.insert(all.end(), out.begin(), out.end());
  }
  return all;
}

void expect_identical(const char* file) {
  const std::string path = kvaudit::testing::cached_model(file);
  if (path.empty()) GTEST_SKIP() << file << " not fetched (scripts/fetch-models.sh)";
  std::map<std::string, int> types;
  const auto gguf = io::GgufFile::open(path);
  for (const auto& t : gguf->tensors()) ++types[io::ggml_type_name(t.type)];
  for (const auto& [name, n] : types) std::printf("[ %s ] %d tensors of %s\n", file, n, name.c_str());
  const auto stored = logits(path, false), expanded = logits(path, true);
  ASSERT_EQ(stored.size(), expanded.size());
  EXPECT_EQ(std::memcmp(stored.data(), expanded.data(), stored.size() * sizeof(float)), 0);
}

TEST(WeightRealModels, SmolLM2Q4_1StoredEqualsExpanded) { expect_identical("SmolLM2-135M-Instruct.Q4_1.gguf"); }

TEST(WeightRealModels, QwenCoder05BQ4_K_MStoredEqualsExpanded) {
  expect_identical("Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf");
}

}  // namespace
}  // namespace kvaudit::engine
