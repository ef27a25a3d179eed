// A write that fails (issue 12: disk full, file-size limit) leaves the previous file byte-identical
// and says so, naming the file; no temporary file is left behind.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "../common/fsize_limit.h"
#include "../common/test_files.h"
#include "io/atomic_file.h"
#include "io_test_util.h"

namespace kvaudit::io {
namespace {

using kvaudit::testing::run_with_fsize_limit;
using kvaudit::testing::slurp;

size_t entries(const std::filesystem::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(WriteFailure, AtomicWritePastFileSizeLimitKeepsThePreviousFile) {
  testing::ScratchDir dir;
  const std::string path = dir.file("results.json");
  const std::string previous = "{\"results\": \"the previous run\"}\n";
  write_file_atomic(path, previous);

  // 4 KiB may be written per file; the new results.json is 64 KiB.
  const auto out = run_with_fsize_limit(4096, [&] { write_file_atomic(path, std::string(65536, 'x')); });
  EXPECT_EQ(out.code, 1) << out.message;  // an I/O failure: exit 1, not a usage error
  EXPECT_NE(out.message.find("writing " + path + " failed (write: File too large)"), std::string::npos) << out.message;
  EXPECT_NE(out.message.find("the previous file is left intact"), std::string::npos) << out.message;
  EXPECT_EQ(slurp(path), previous);
  EXPECT_EQ(entries(dir.path()), 1u) << "the temporary file is removed";
}

TEST(WriteFailure, FirstWriteThatFailsSaysNothingWasWritten) {
  testing::ScratchDir dir;
  const std::string path = dir.file("report.json");
  const auto out = run_with_fsize_limit(100, [&] { write_file_atomic(path, std::string(1000, 'x')); });
  EXPECT_EQ(out.code, 1) << out.message;
  EXPECT_NE(out.message.find("writing " + path + " failed"), std::string::npos) << out.message;
  EXPECT_NE(out.message.find("nothing was written"), std::string::npos) << out.message;
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(entries(dir.path()), 0u);
}

TEST(WriteFailure, WriteWithinTheLimitSucceeds) {  // the harness itself: the limit is what fails above
  testing::ScratchDir dir;
  const std::string path = dir.file("results.json");
  const auto out = run_with_fsize_limit(4096, [&] { write_file_atomic(path, std::string(4000, 'y')); });
  EXPECT_EQ(out.code, 0) << out.message;
  EXPECT_EQ(slurp(path), std::string(4000, 'y'));
}

}  // namespace
}  // namespace kvaudit::io
