// One writer per --out (issue 12): <out>/.lock is taken with a non-blocking exclusive flock; a second
// taker gets a UsageError naming the directory; the lock goes with its holder.
#include "io/out_dir_lock.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "io_test_util.h"

namespace kvaudit::io {
namespace {

TEST(OutDirLock, SecondHolderIsRefusedWithTheDirectoryNamed) {
  testing::ScratchDir dir;
  const std::string out = dir.file("out/nested");  // created by the lock
  const OutDirLock first(out);
  EXPECT_EQ(first.path(), out + "/.lock");
  EXPECT_TRUE(std::filesystem::exists(out + "/.lock"));
  // flock(2) locks belong to the open file description: a second open in this process conflicts too.
  testing::expect_usage_error([&] { OutDirLock second(out); },
                              {"output directory " + out + " is in use", "another kvaudit is writing it",
                               out + "/.lock", "another --out"});
}

TEST(OutDirLock, ReleasedWithItsHolder) {
  testing::ScratchDir dir;
  const std::string out = dir.file("out");
  { const OutDirLock first(out); }
  EXPECT_NO_THROW(OutDirLock again(out));
}

// A refused run leaves no empty --out behind: the directory the lock created goes with it when
// nothing else was written there; one that held anything, or existed before, stays.
TEST(OutDirLock, RemovesTheDirectoryItCreatedWhenNothingWasWritten) {
  testing::ScratchDir dir;
  const std::string empty = dir.file("empty"), used = dir.file("used"), before = dir.file("before");
  { const OutDirLock lock(empty); }
  EXPECT_FALSE(std::filesystem::exists(empty));
  {
    const OutDirLock lock(used);
    std::ofstream(used + "/results.json") << "{}";
  }
  EXPECT_TRUE(std::filesystem::exists(used + "/results.json"));
  std::filesystem::create_directories(before);
  { const OutDirLock lock(before); }
  EXPECT_TRUE(std::filesystem::exists(before));
}

TEST(OutDirLock, AnotherProcessIsRefused) {
  testing::ScratchDir dir;
  const std::string out = dir.file("out");
  const OutDirLock held(out);
  const pid_t pid = fork();
  if (pid == 0) {
    try {
      OutDirLock child(out);
    } catch (const UsageError&) {
      _exit(2);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

TEST(OutDirLock, UncreatableDirectoryIsAUsageError) {
  testing::ScratchDir dir;
  const std::string file = dir.file("a_file");
  { std::ofstream(file) << "x"; }
  testing::expect_usage_error([&] { OutDirLock l(file + "/out"); }, {"cannot create output directory " + file + "/out"});
}

}  // namespace
}  // namespace kvaudit::io
