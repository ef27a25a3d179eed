// End-to-end `kvaudit screen` on the demo model: per-layer scores for every layer, a run killed
// part way resumes from screen_scores.jsonl with the same numbers, and a log from another run, a
// malformed line, changed prompt tokens or a bad --bench exit 2 naming the input. Skipped when
// SmolLM2 has not been fetched.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../common/run_cli.h"
#include "../common/test_files.h"

namespace {

namespace fs = std::filesystem;
using kvaudit::testing::run_cli;
using kvaudit::testing::slurp;

std::vector<std::string> lines_of(const fs::path& p) {
  std::vector<std::string> out;
  std::istringstream in(slurp(p));
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

void write_lines(const fs::path& p, const std::vector<std::string>& lines, const std::string& tail = "") {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  for (const auto& l : lines) f << l << '\n';
  f << tail;
}

class CliScreen : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = kvaudit::testing::demo_model();
    if (model_.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not fetched (scripts/fetch-models.sh)";
    root_ = fs::temp_directory_path() / ("kvaudit_cli_screen_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }
  // SmolLM2 refuses two of the paper's first four jailbreak prompts within 8 tokens: openings to score.
  static std::string data(const std::string& file) {
    return (fs::path(KVAUDIT_SOURCE_DIR) / ".." / "shared" / "datasets" / "paper_custom" / file).string();
  }
  std::vector<std::string> args(const fs::path& out, const std::string& bench = "") const {
    return {"screen", "--model", model_, "--kv", "int2:token:asym", "--calib", data("jailbreak.txt") + ":4",
            "--bench", bench.empty() ? data("privacy.txt") : bench, "--limit", "4", "--max-new-tokens", "8",
            "--threads", "2", "--quiet", "--out", out.string()};
  }
  std::string model_;
  fs::path root_;
};

TEST_F(CliScreen, ScoresEveryLayerAndResumesWithTheSameNumbers) {
  const fs::path out = root_ / "screen";
  const auto first = run_cli(args(out));
  ASSERT_EQ(first.code, 0) << first.err;
  const auto a = nlohmann::json::parse(slurp(out / "screen.json"));
  ASSERT_EQ(a["schemes"].size(), 1u);
  EXPECT_EQ(a["schemes"][0]["per_layer"].size(), 30u);  // SmolLM2 has 30 layers
  EXPECT_EQ(a["n_prompts"], 4);
  const size_t prefills = 4 * (1 + 1 + 30);  // the 16-bit model, the scheme, each layer alone under it
  EXPECT_EQ(a["timing"]["prefills"], prefills);
  EXPECT_EQ(a["timing"]["prefills_resumed"], 0);
  EXPECT_NE(first.out.find("int2:token:asym: layers alone, largest fall first: "), std::string::npos) << first.out;
  const fs::path log = out / "screen_scores.jsonl";
  std::vector<std::string> lines = lines_of(log);
  ASSERT_EQ(lines.size(), 1 + prefills);

  // Killed after 50 scores, mid-way through the 51st line.
  write_lines(log, std::vector<std::string>(lines.begin(), lines.begin() + 51), lines[51].substr(0, 20));
  const auto second = run_cli(args(out));
  ASSERT_EQ(second.code, 0) << second.err;
  const auto b = nlohmann::json::parse(slurp(out / "screen.json"));
  EXPECT_EQ(b["timing"]["prefills_resumed"], 50);
  EXPECT_EQ(b["schemes"], a["schemes"]);  // every score bit for bit (the engine is batch-invariant)
  EXPECT_EQ(lines_of(log).size(), 1 + prefills);

  const auto third = run_cli(args(out));
  ASSERT_EQ(third.code, 0) << third.err;
  const auto c = nlohmann::json::parse(slurp(out / "screen.json"));
  EXPECT_EQ(c["timing"]["prefills_resumed"], prefills);
  EXPECT_EQ(c["schemes"], a["schemes"]);

  // Another system prompt: the calibration's samples were generated without it.
  auto with_system = args(out);
  with_system.insert(with_system.end(), {"--system", "Answer briefly."});
  const auto changed = run_cli(with_system);
  EXPECT_EQ(changed.code, 2);
  EXPECT_NE(changed.err.find("samples.jsonl: sample"), std::string::npos) << changed.err;
  EXPECT_NE(changed.err.find("was generated with other settings (system: \"\" there, \"Answer briefly.\" in this run)"),
            std::string::npos)
      << changed.err;
  // A score of a prompt whose tokens were others (the log says which) is not reused.
  lines = lines_of(log);
  auto score = nlohmann::json::parse(lines[1]);
  score["tokens"] = "0000000000000000";
  lines[1] = score.dump();
  write_lines(log, lines);
  const auto tokens = run_cli(args(out));
  EXPECT_EQ(tokens.code, 2);
  EXPECT_NE(tokens.err.find("screen_scores.jsonl:2: prompt"), std::string::npos) << tokens.err;
  EXPECT_NE(tokens.err.find("was scored with other tokens than this run's"), std::string::npos) << tokens.err;
}

TEST_F(CliScreen, BadLogsAndBenchmarksExitTwoNamingThem) {
  const fs::path out = root_ / "screen";
  ASSERT_EQ(run_cli(args(out)).code, 0);
  const fs::path log = out / "screen_scores.jsonl";
  std::vector<std::string> lines = lines_of(log);

  auto bad = lines;
  bad[2] = R"({"policy":"fp16","prompt":"p","score":true,"tokens":"t"})";
  write_lines(log, bad);
  const auto malformed = run_cli(args(out));
  EXPECT_EQ(malformed.code, 2);
  EXPECT_NE(malformed.err.find("screen_scores.jsonl:3: 'score' must be a number"), std::string::npos) << malformed.err;

  auto other = lines;
  other[0] = R"({"model":"other.gguf","openings":[1],"screen_scores":1})";
  write_lines(log, other);
  const auto foreign = run_cli(args(out));
  EXPECT_EQ(foreign.code, 2);
  EXPECT_NE(foreign.err.find("was written by a different screen run"), std::string::npos) << foreign.err;

  // An unknown benchmark stops before the calibration generates anything.
  const fs::path fresh = root_ / "fresh";
  const auto unknown = run_cli(args(fresh, "no-such-bench"));
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown benchmark 'no-such-bench'"), std::string::npos) << unknown.err;
  EXPECT_FALSE(fs::exists(fresh / "samples.jsonl"));
}

}  // namespace
