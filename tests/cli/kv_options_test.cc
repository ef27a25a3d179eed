// The KV options shared by `logits` and `generate` (src/cli/kv_options.h, SPEC.md §3, §7), through
// the kvaudit binary on the tiny llama fixture: bad values exit 2 naming the flag, a policy file
// equals the same --kv, packed storage gives the simulated logits bit for bit.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

const std::string kLlama = std::string(KVAUDIT_FIXTURES) + "/models/llama";
const std::filesystem::path kTmp = std::filesystem::temp_directory_path();

struct RunResult {
  int rc;
  std::string err;
};

RunResult run(const std::string& args) {
  const std::string err_path = (kTmp / "kvaudit_kv_options_err.txt").string();
  const int status = std::system((std::string(KVAUDIT_BINARY) + " " + args + " >/dev/null 2>" + err_path).c_str());
  std::ifstream f(err_path);
  return {WEXITSTATUS(status), std::string(std::istreambuf_iterator<char>(f), {})};
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string logits(const std::string& name, const std::string& kv_flags) {
  const auto out = kTmp / ("kvaudit_kv_options_" + name + ".npy");
  const RunResult r = run("logits --model " + kLlama + " --tokens 1,5,9,13,17,21,25 --out " + out.string() + " " + kv_flags);
  EXPECT_EQ(r.rc, 0) << kv_flags << ": " << r.err;
  return slurp(out);
}

TEST(KvOptions, BadValuesAreUsageErrorsNamingTheFlag) {
  const std::string base = "logits --model " + kLlama + " --tokens 1 --out /dev/null ";
  RunResult r = run(base + "--kv-storage fast");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--kv-storage"), std::string::npos) << r.err;
  r = run(base + "--compat vllm");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--compat"), std::string::npos) << r.err;
  r = run(base + "--kv int4 --kv-policy /nonexistent.json");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--kv-policy"), std::string::npos) << r.err;
  r = run(base + "--kv-policy /nonexistent/kvaudit_policy.json");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("kvaudit_policy.json"), std::string::npos) << r.err;
  r = run("generate --model " + kLlama + " --tokens 1 --max-new-tokens 2 --kv 'int4;layers[9]=fp16'");
  EXPECT_EQ(r.rc, 2);  // the fixture has fewer than 10 layers
  EXPECT_NE(r.err.find("layers[9]"), std::string::npos) << r.err;
}

TEST(KvOptions, PolicyFilePackedStorageAndCompatPaper) {
  const std::string sim = logits("sim", "--kv int2:channel:asym:g32:r32");
  ASSERT_FALSE(sim.empty());
  EXPECT_EQ(logits("packed", "--kv int2:channel:asym:g32:r32 --kv-storage packed"), sim);
  EXPECT_NE(logits("fp16", ""), sim);  // the scheme does change the logits

  const auto file = kTmp / "kvaudit_kv_options_policy.json";
  std::ofstream(file) << R"({"spec": "int2:channel:asym:g32:r32", "storage": "packed"})";
  EXPECT_EQ(logits("file", "--kv-policy " + file.string()), sim);
  // --kv-storage on the command line overrides the file's "storage"; the result is the same.
  EXPECT_EQ(logits("file_sim", "--kv-policy " + file.string() + " --kv-storage simulated"), sim);

  // --compat paper (per-forward-call scales) is passed through: both storages still agree.
  const std::string paper = logits("paper", "--kv int3:tensor:sym --compat paper");
  EXPECT_EQ(logits("paper_packed", "--kv int3:tensor:sym --compat paper --kv-storage packed"), paper);
}

}  // namespace
