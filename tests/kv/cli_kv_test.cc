// `kvaudit kv` end to end (SPEC.md §3 end): exit codes, the dequantized .npy, the printed metrics.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "io/npy.h"

namespace {

struct CliRun {
  int status;
  std::string out;
};

CliRun run(const std::string& args) {
  const std::string cmd = std::string(KVAUDIT_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int st = pclose(p);
  return {WEXITSTATUS(st), out};
}

TEST(CliKv, AppliesASchemeAndReportsMetrics) {
  const auto dir = std::filesystem::temp_directory_path() / ("kvaudit_kv_cli_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string in = (dir / "x.npy").string(), out = (dir / "y.npy").string();
  // Two tokens x 2 heads of 2. int2:head:sym: head (3, -3) -> s = 3: 3, -3; head (1.5, 0) -> s = 1.5: 1.5, 0;
  // token 2: (1, -1) -> 1, -1; (10, 5) -> s = 10: 10, round(0.5) = 0.
  kvaudit::io::write_npy(in, {2, 4}, std::vector<float>{3, -3, 1.5f, 0, 1, -1, 10, 5});
  const CliRun r = run("kv --scheme int2:head:sym --role k --heads 2 --in " + in + " --out " + out);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto y = kvaudit::io::read_npy(out);
  EXPECT_EQ(y.shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(y.data, (std::vector<float>{3, -3, 1.5f, 0, 1, -1, 10, 0}));
  // Error only in the last value: 25 / 8 values; codes 1 byte + 2 fp32 scales = 9 bytes per token.
  EXPECT_NE(r.out.find("mse: 3.125\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bytes_per_token: 9.0000\n"), std::string::npos) << r.out;
  // Packed storage prints the same result.
  const CliRun rp = run("kv --scheme int2:head:sym --role k --heads 2 --storage packed --in " + in + " --out " + out);
  EXPECT_EQ(rp.out, r.out);
  // A bad spec: exit 2 and the caret.
  const CliRun bad = run("kv --scheme int2:hed --role k --in " + in + " --out " + out);
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("unknown option 'hed'\n  int2:hed\n       ^^^"), std::string::npos) << bad.out;
  // A group that does not divide the width: exit 2, naming the group size.
  const CliRun geo = run("kv --scheme int4:group:g3 --role v --in " + in + " --out " + out);
  EXPECT_EQ(geo.status, 2);
  EXPECT_NE(geo.out.find("group size 3"), std::string::npos) << geo.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
