// The engine's commands end to end through the kvaudit binary (SPEC.md §7): `logits` writes the
// reference logits, bad input exits 2 with a message naming it, `generate --tokens` is greedy.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "io/npy.h"

namespace {

// As golden_test.cc: fp32 compute vs the float64 reference.
constexpr double kFp32RelTol = 1e-4;

struct CliRun {
  int code;
  std::string out;  // stdout and stderr
};

CliRun run(const std::string& args) {
  const std::string cmd = std::string(KVAUDIT_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

const std::string kLlama = std::string(KVAUDIT_FIXTURES) + "/models/llama";

TEST(EngineCli, LogitsWritesReferenceLogits) {
  const std::string out = (std::filesystem::temp_directory_path() / "kvaudit_engine_cli_logits.npy").string();
  const CliRun r = run("logits --model " + kLlama + " --tokens 94,93,94,36,16,88,10 --device cpu --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto got = kvaudit::io::read_npy(out);
  const auto ref = kvaudit::io::read_npy(kLlama + "/logits_s0.npy");
  ASSERT_EQ(got.shape, (std::vector<int64_t>{7, 96}));
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.data.size(); ++i) {
    num = std::max(num, double(std::fabs(got.data[i] - ref.data[i])));
    den = std::max(den, double(std::fabs(ref.data[i])));
  }
  EXPECT_LE(num / den, kFp32RelTol);
  std::filesystem::remove(out);
}

TEST(EngineCli, BadInputExitsTwoNamingIt) {
  CliRun r = run("logits --model " + kLlama + " --tokens 1,x,3 --out /dev/null");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--tokens: 'x'"), std::string::npos) << r.out;
  r = run("logits --model " + kLlama + " --tokens 1,96 --out /dev/null");  // vocab is 96
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("token id 96 out of range"), std::string::npos) << r.out;
  // --device cuda where it cannot run (built without CUDA, or no device visible: as in CI) exits 2.
  if (kvaudit::engine::default_device() == kvaudit::engine::Device::kCpu) {
    r = run("logits --model " + kLlama + " --tokens 1 --device cuda --out /dev/null");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.out.find("--device cuda: "), std::string::npos) << r.out;
  }
  r = run("logits --model " + kLlama + " --tokens 1 --kv int9 --out /dev/null");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("int9"), std::string::npos) << r.out;
}

TEST(EngineCli, GenerateTokensIsGreedyContinuation) {
  const CliRun r = run("generate --model " + kLlama + " --tokens 24,63,82,41,40 --max-new-tokens 12 --device cpu");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  // manifest.json cases.llama.fp32.greedy_new_ids
  EXPECT_EQ(j["new_ids"].get<std::vector<int>>(), (std::vector<int>{54, 42, 42, 42, 74, 54, 42, 70, 44, 16, 70, 44}));
  EXPECT_EQ(j["finish"], "length");
}

}  // namespace
