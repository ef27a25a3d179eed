// Two runs on one --out (issue 12): every command that writes results into --out (eval, sweep,
// audit, diagnose, screen) takes <out>/.lock first; while this test process holds it, the CLI stops
// with exit 2 naming the directory, before loading anything or writing a sample.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../common/run_cli.h"
#include "io/out_dir_lock.h"

namespace {

namespace fs = std::filesystem;
using kvaudit::testing::run_cli;

struct Case {
  const char* name;
  std::vector<std::string> args;  // without --out
};

std::vector<Case> writers() {
  const std::string m = "/nonexistent/model.gguf";  // the lock comes first: no model is needed
  return {{"eval", {"eval", "--model", m, "--bench", "advbench", "--quiet"}},
          {"sweep", {"sweep", "--model", m, "--bench", "advbench", "--quiet"}},
          {"audit", {"audit", "--model", m, "--kv", "int3:tensor:sym", "--quiet"}},
          {"diagnose", {"diagnose", "--model", m, "--quiet"}},
          {"screen", {"screen", "--model", m, "--kv", "int4:token:asym", "--bench", "advbench", "--quiet"}}};
}

class CliOutLock : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("kvaudit_cli_lock_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(CliOutLock, SecondWriterStopsNamingTheDirectory) {
  for (const Case& c : writers()) {
    SCOPED_TRACE(c.name);
    const std::string out = (root_ / c.name).string();
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"--out", out});
    {
      const kvaudit::io::OutDirLock held(out);  // "another kvaudit" writing out
      const auto r = run_cli(args);
      EXPECT_EQ(r.code, 2);
      EXPECT_EQ(r.err, "kvaudit: error: output directory " + out +
                           " is in use: another kvaudit is writing it (it holds " + out +
                           "/.lock); wait for that run to finish or give this one another --out\n");
      EXPECT_EQ(r.out, "");
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(out)) files.push_back(e.path().filename().string());
      EXPECT_EQ(files, std::vector<std::string>{".lock"}) << "nothing written next to the lock";
    }
    // Released: the same command gets past the lock (and stops at the missing model instead).
    const auto r = run_cli(args);
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(r.err.find("is in use"), std::string::npos) << r.err;
  }
}

}  // namespace
