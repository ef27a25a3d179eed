// Runs the kvaudit binary and keeps what it printed, so CLI tests check messages as well as exit
// codes (STYLE.md "CLI tests check exit codes and messages").
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "test_files.h"

namespace kvaudit::testing {

struct CliRun {
  int code = -1;    // exit status; -1 when killed by a signal
  std::string out;  // stdout
  std::string err;  // stderr
};

// `env`: "NAME=value ..." put before the command (empty: the test's own environment).
inline CliRun run_cli(const std::vector<std::string>& args, const std::string& env = "") {
  static int n = 0;
  const auto base = std::filesystem::temp_directory_path() /
                    ("kvaudit_cli_run_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
  std::string cmd = env.empty() ? "" : "env " + env + " ";
  cmd += KVAUDIT_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " >" + base.string() + ".out 2>" + base.string() + ".err";
  const int status = std::system(cmd.c_str());
  CliRun r;
  r.out = slurp(base.string() + ".out");
  r.err = slurp(base.string() + ".err");
  std::filesystem::remove(base.string() + ".out");
  std::filesystem::remove(base.string() + ".err");
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace kvaudit::testing
