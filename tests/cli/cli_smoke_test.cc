#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace {

int run(const std::string& args) {
  const int status = std::system((std::string(KVAUDIT_BINARY) + " " + args + " >/dev/null 2>&1").c_str());
  return WEXITSTATUS(status);
}

TEST(Cli, VersionExitsZero) { EXPECT_EQ(run("--version"), 0); }
TEST(Cli, UnknownCommandIsUsageError) { EXPECT_EQ(run("frobnicate"), 2); }
TEST(Cli, NoCommandIsUsageError) { EXPECT_EQ(run(""), 2); }

}  // namespace
