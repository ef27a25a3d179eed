// The memory check (issue 12): a model whose fp32 weights exceed the available memory stops with a
// UsageError before anything is allocated. $KVAUDIT_MEM_AVAILABLE fakes the measurement.
#include "model/memory_check.h"

#include <chrono>
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/model.h"
#include "tiny_model.h"

namespace kvaudit::model {
namespace {

using namespace testing_util;

// Llama-3.1-70B's shapes (published config.json): 70.55 B parameters, 262.8 GiB in fp32.
nlohmann::json llama_70b_config() {
  return {{"model_type", "llama"},         {"num_hidden_layers", 80},      {"hidden_size", 8192},
          {"num_attention_heads", 64},     {"num_key_value_heads", 8},     {"intermediate_size", 28672},
          {"vocab_size", 128256},          {"rms_norm_eps", 1e-5},         {"max_position_embeddings", 131072},
          {"rope_theta", 500000.0},        {"tie_word_embeddings", false}};
}
constexpr int64_t kLlama70bParams = 70553706496;

std::string write_config(const std::string& dir, const nlohmann::json& j) {
  const std::string path = dir + "/config.json";
  std::ofstream(path) << j.dump();
  return path;
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Designated initializers would leave LoadOptions' later members to -Wmissing-field-initializers.
LoadOptions random_weights() {
  LoadOptions lo;
  lo.random_weights = true;
  return lo;
}

TEST(MemoryCheck, WeightsBytesAreFourPerParameter) {
  // The tiny qwen2 of random_weights_test: n_params elements, 4 bytes each.
  const ModelConfig c = parse_config_json(tiny_config("qwen2"), "tiny");
  EXPECT_EQ(weights_bytes(c, arch_spec(c.arch)),
            4 * (2 * 16 * 8 + 8 + 2 * (8 + 64 + 32 + 32 + 64 + 8 + 4 + 4 + 8 + 96 * 3)));
  const ModelConfig big = parse_config_json(llama_70b_config(), "70b");
  EXPECT_EQ(weights_bytes(big, arch_spec(big.arch)), 4 * kLlama70bParams);
}

TEST(MemoryCheck, ParsesMeminfoAndCgroup) {
  EXPECT_EQ(parse_meminfo_available("MemTotal:       32658980 kB\nMemFree:         1089432 kB\n"
                                    "MemAvailable:   18138312 kB\nBuffers:  1 kB\n"),
            int64_t(18138312) * 1024);
  EXPECT_EQ(parse_meminfo_available("MemTotal: 1 kB\n"), std::nullopt);
  EXPECT_EQ(parse_meminfo_available("MemAvailable: lots kB\n"), std::nullopt);
  EXPECT_EQ(cgroup_headroom("8589934592\n", "1073741824\n"), int64_t(7) << 30);
  EXPECT_EQ(cgroup_headroom("1000\n", "2000\n"), 0);  // over the limit already
  EXPECT_EQ(cgroup_headroom("max\n", "1073741824\n"), std::nullopt);
  EXPECT_EQ(cgroup_headroom("", "1"), std::nullopt);
}

TEST(MemoryCheck, EnvironmentHookReplacesTheMeasurement) {
  {
    ScopedEnv env("KVAUDIT_MEM_AVAILABLE", "12345");
    const auto a = available_memory();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->bytes, 12345);
    EXPECT_EQ(a->source, "$KVAUDIT_MEM_AVAILABLE");
  }
  {
    ScopedEnv env("KVAUDIT_MEM_AVAILABLE", "12G");
    EXPECT_THROW(available_memory(), UsageError);
  }
}

TEST(MemoryCheck, HugeRandomWeightsConfigFailsFastWithTheNumbers) {
  ScopedEnv env("KVAUDIT_MEM_AVAILABLE", "17179869184");  // 16 GiB
  const std::string cfg = write_config(fresh_dir("70b"), llama_70b_config());
  const auto t0 = std::chrono::steady_clock::now();
  try {
    load_model(cfg, random_weights());
    FAIL() << "a 70B model loaded in 16 GiB";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(cfg + ": the model does not fit in memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("in fp32 need 262.8 GiB (70.55 B parameters x 4 bytes)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("16.0 GiB is available ($KVAUDIT_MEM_AVAILABLE)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at most about 4.29 B in fp32 here"), std::string::npos) << msg;
  }
  // Nothing was allocated: filling 263 GiB would take minutes, the check takes microseconds.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
}

TEST(MemoryCheck, FitsWhenEnoughIsAvailable) {
  ScopedEnv env("KVAUDIT_MEM_AVAILABLE", "8192");  // the tiny model needs 5,152 bytes
  const std::string dir = fresh_dir("tiny");
  write_config(dir, tiny_config("qwen2"));
  EXPECT_NO_THROW(load_model(dir, random_weights()));
  ScopedEnv less("KVAUDIT_MEM_AVAILABLE", "5151");
  EXPECT_THROW(load_model(dir, random_weights()), UsageError);
}

TEST(MemoryCheck, RealMeasurementRejects70B) {
  ScopedEnv env("KVAUDIT_MEM_AVAILABLE", nullptr);
  const auto a = available_memory();
  if (!a) GTEST_SKIP() << "neither /proc/meminfo nor a cgroup limit is readable here";
  if (a->bytes >= 4 * kLlama70bParams) GTEST_SKIP() << "this machine has room for 263 GiB of weights";
  const std::string cfg = write_config(fresh_dir("70b"), llama_70b_config());
  EXPECT_THROW(load_model(cfg, random_weights()), UsageError);
}

}  // namespace
}  // namespace kvaudit::model
