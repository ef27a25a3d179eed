// The binary's entry points: exit codes (SPEC.md §6: 0 success, 2 usage) and what each one prints.
#include <gtest/gtest.h>

#include <string>

#include "../common/run_cli.h"
#include "core/version.h"

namespace {

using kvaudit::testing::run_cli;

TEST(Cli, VersionExitsZero) {
  const auto r = run_cli({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, std::string(kvaudit::kVersion) + "\n");
  EXPECT_EQ(r.err, "");
}

TEST(Cli, UnknownCommandIsUsageError) {
  const auto r = run_cli({"frobnicate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "kvaudit: error: unknown command 'frobnicate' (commands: generate, logits, tokenize, template, kv, eval, "
            "sweep, ppl, diagnose, audit, screen, bench, serve, score)\nRun with --help for more information.\n");
  EXPECT_EQ(r.out, "");
}

TEST(Cli, NoCommandIsUsageError) {
  const auto r = run_cli({});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("A subcommand is required"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(Cli, HelpListsTheCommands) {
  const auto r = run_cli({"--help"});
  EXPECT_EQ(r.code, 0);
  for (const char* cmd : {"generate", "eval", "sweep", "ppl", "audit", "diagnose", "screen", "bench", "serve"})
    EXPECT_NE(r.out.find(std::string("  ") + cmd), std::string::npos) << cmd << " missing from\n" << r.out;
}

TEST(Cli, UsageErrorsArePrefixedAndExitTwo) {
  const auto r = run_cli({"generate", "--model", "/nonexistent/model.gguf", "--prompt", "x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "kvaudit: error: /nonexistent/model.gguf: no such file or directory\n");
}

// --batch-size left out is the backend's choice; given, it must be a count of sequences.
TEST(Cli, BatchSizeMustBePositive) {
  for (const char* cmd : {"generate", "eval", "sweep", "audit"})
    for (const char* bad : {"0", "-3"}) {
      const auto r = run_cli({cmd, "--model", "m", "--batch-size", bad});
      EXPECT_EQ(r.code, 2) << cmd << " " << bad << ": " << r.err;
      EXPECT_NE(r.err.find("--batch-size"), std::string::npos) << cmd << ": " << r.err;
    }
}

}  // namespace
