// kvaudit score --bench ifeval: outputs and bad input (issue 11, "Must show" 3): every bad line is
// a clear error naming file and line, exit 2, and nothing is written.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../common/run_cli.h"

namespace kvaudit::testing {
namespace {

namespace fs = std::filesystem;

class ScoreCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kvaudit_score_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    if (!fs::exists(data_ + "/ifeval/input_data.jsonl")) GTEST_SKIP() << "no IFEval data";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& body) {
    const std::string p = (dir_ / "responses.jsonl").string();
    std::ofstream(p) << body;
    return p;
  }
  CliRun score(const std::string& responses) {
    return run_cli({"score", "--bench", "ifeval", "--responses", responses, "--out", (dir_ / "out").string(), "--data",
                    data_});
  }
  fs::path dir_;
  std::string data_ = std::string(KVAUDIT_SOURCE_DIR) + "/../shared/datasets";
};

TEST_F(ScoreCli, WritesAccuraciesAndSamplesInInstructionOrder) {
  // key 1001: punctuation:no_comma. key 1005: three instructions, answered by prompt text.
  const std::string prompt_1005 = [&] {
    std::ifstream f(data_ + "/ifeval/input_data.jsonl");
    for (std::string line; std::getline(f, line);) {
      const auto j = nlohmann::json::parse(line);
      if (j["key"] == 1005) return j["prompt"].get<std::string>();
    }
    return std::string();
  }();
  ASSERT_FALSE(prompt_1005.empty());
  const auto r = score(write("{\"key\": 1001, \"response\": \"No commas at all here.\"}\n\n" +
                             nlohmann::json({{"prompt", prompt_1005}, {"response", "short, with a comma"}}).dump() + "\n"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto results = nlohmann::json::parse(slurp(dir_ / "out" / "results.json"));
  const auto& m = results["results"]["responses"]["ifeval"];
  EXPECT_EQ(m["n"], 2);
  EXPECT_DOUBLE_EQ(m["ifeval_prompt_strict"].get<double>(), 0.5);
  std::ifstream s(dir_ / "out" / "samples.jsonl");
  std::string l1, l2;
  std::getline(s, l1);
  std::getline(s, l2);
  const auto a = nlohmann::json::parse(l1), b = nlohmann::json::parse(l2);
  EXPECT_EQ(a["key"], 1001);
  EXPECT_EQ(a["strict"]["follow_all_instructions"], true);
  EXPECT_EQ(a["strict"]["follow_instruction_list"], nlohmann::json::array({true}));
  EXPECT_EQ(b["key"], 1005);
  EXPECT_EQ(b["instruction_id_list"].size(), b["strict"]["follow_instruction_list"].size());
  EXPECT_EQ(b["loose"]["follow_all_instructions"], false);
  EXPECT_TRUE(results["model"].is_null());  // made elsewhere
  EXPECT_EQ(results["timing"]["samples_scored"], 2);
}

// As SPEC.md §7 writes it, without --out: the metrics printed, nothing written.
TEST_F(ScoreCli, WithoutOutPrintsTheMetricsOnly) {
  const auto r = run_cli({"score", "--bench", "ifeval", "--responses",
                          write("{\"key\": 1001, \"response\": \"No commas at all here.\"}\n"), "--data", data_, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["ifeval_prompt_strict"], 1.0);
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  const auto text = run_cli({"score", "--responses", (dir_ / "responses.jsonl").string(), "--data", data_});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("prompt strict 1.0000"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("wrote"), std::string::npos) << text.out;
}

TEST_F(ScoreCli, BadInputNamesFileAndLineAndExits2) {
  struct Case {
    std::string body, message;
  };
  const Case cases[] = {
      {"{\"key\": 1001, \"response\": \"ok\"}\n{\"response\": \"no key\"}\n", ":2: neither \"key\" nor \"prompt\""},
      {"{\"key\": 99999, \"response\": \"x\"}\n", ":1: key 99999 is not an IFEval prompt"},
      {"{\"prompt\": \"What is 2+2?\", \"response\": \"4\"}\n", ":1: the prompt is not an IFEval prompt"},
      {"{\"key\": 1001, \"response\": \"x\"}\n{\"key\": 1001, \"resp\n", ":2: not valid JSON"},
      {"{\"key\": 1001, \"response\": 3}\n", ":1: no string \"response\""},
      {"{\"key\": 1001, \"response\": \"a\"}\n{\"key\": \"1001\", \"response\": \"b\"}\n", ":2: key 1001 was already answered on line 1"},
      {"[1, 2]\n", ":1: expected an object"},
      {"\n\n", "no responses"},
  };
  for (const auto& c : cases) {
    const std::string path = write(c.body);
    const auto r = score(path);
    EXPECT_EQ(r.code, 2) << c.body;
    EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "out" / "results.json")) << c.body;
  }
  const auto missing = score((dir_ / "missing.jsonl").string());
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("missing.jsonl"), std::string::npos);
  const auto other = run_cli({"score", "--bench", "advbench", "--responses", write("{}"), "--out", (dir_ / "o").string()});
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.err.find("ifeval"), std::string::npos);
}

}  // namespace
}  // namespace kvaudit::testing
