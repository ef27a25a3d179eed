#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "eval/results.h"
#include "report/results_json.h"

namespace kvaudit::report {
namespace {

using eval::BenchMetrics;
using eval::RunResults;

RunResults tiny() {
  RunResults r;
  r.model = {"/m", "llama", 1, "00"};
  BenchMetrics m;
  m.n = 3;
  m.refusal_rate = 1.0 / 3;
  r.results = {{"fp16", {{"advbench", m}}}};
  return r;
}

TEST(ResultsJson, WrittenAtomicallyIntoDir) {
  const auto dir = std::filesystem::temp_directory_path() / "kvaudit_report_results";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  write_results(dir.string(), tiny());
  std::ifstream in(dir / "results.json", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), results_json(tiny()));
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1u) << "no temporary file left behind";
}

}  // namespace
}  // namespace kvaudit::report
