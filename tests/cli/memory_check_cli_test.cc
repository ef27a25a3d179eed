// A model that will not fit (issue 12): with $KVAUDIT_MEM_AVAILABLE faking 16 GiB, a --random-weights
// config.json of Llama-3.1-70B's shapes stops at once with exit 2 and the numbers, nothing allocated.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../common/run_cli.h"

namespace {

namespace fs = std::filesystem;
using kvaudit::testing::run_cli;

class CliMemoryCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("kvaudit_cli_mem_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    config_ = (root_ / "config.json").string();
    const nlohmann::json j = {{"model_type", "llama"},     {"num_hidden_layers", 80},  {"hidden_size", 8192},
                              {"num_attention_heads", 64}, {"num_key_value_heads", 8}, {"intermediate_size", 28672},
                              {"vocab_size", 128256},      {"rms_norm_eps", 1e-5},     {"max_position_embeddings", 131072},
                              {"rope_theta", 500000.0},    {"tie_word_embeddings", false}};
    std::ofstream(config_) << j.dump();
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string expected_message() const {
    return "kvaudit: error: " + config_ +
           ": the model does not fit in memory: its weights in fp32 need 262.8 GiB (70.55 B parameters x 4 bytes) "
           "and 16.0 GiB is available ($KVAUDIT_MEM_AVAILABLE). Weights are held in fp32 only when asked for "
           "(--fp32-weights, or --random-weights without --weights-type); leave that out to keep them in their "
           "stored encoding (a Q4 GGUF takes ~0.6 bytes per parameter), use a model with fewer parameters (at most "
           "about 4.29 B in fp32 here), or run where more memory is free\n";
  }
  fs::path root_;
  std::string config_;
};

TEST_F(CliMemoryCheck, LogitsStopsBeforeAllocating) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_cli({"logits", "--model", config_, "--random-weights", "--tokens", "1,2,3", "--out",
                          (root_ / "logits.npy").string()},
                         "KVAUDIT_MEM_AVAILABLE=17179869184");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, expected_message());
  EXPECT_FALSE(fs::exists(root_ / "logits.npy"));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
}

TEST_F(CliMemoryCheck, EvalStopsBeforeAllocating) {
  const auto r = run_cli({"eval", "--model", config_, "--random-weights", "--bench", "advbench", "--limit", "1",
                          "--quiet", "--out", (root_ / "out").string()},
                         "KVAUDIT_MEM_AVAILABLE=17179869184");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, expected_message());
  EXPECT_FALSE(fs::exists(root_ / "out" / "samples.jsonl"));
}

// bench's batch and lengths: their caches and activations are checked against the memory left
// after the load (the tiny fixture model: 2 layers, kv_dim 16), not found by std::bad_alloc.
TEST(CliMemoryCheckBench, BatchTooLargeForTheMemoryIsExitTwo) {
  const std::string m = (fs::path(KVAUDIT_FIXTURES) / "models" / "llama").string();
  const auto r = run_cli({"bench", "--model", m, "--batch", "2000000", "--prompt-len", "64", "--gen", "1", "--repeat",
                          "1", "--threads", "1"},
                         "KVAUDIT_MEM_AVAILABLE=1073741824");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--batch 2000000 --prompt-len 64 --gen 1: the KV caches and activations need about"),
            std::string::npos)
      << r.err;
}

}  // namespace
