#include "report/results_json.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "core/version.h"
#include "eval/results.h"
#include "report/table.h"

namespace kvaudit::report {
namespace {

using eval::BenchMetrics;
using eval::RunResults;

RunResults example() {
  RunResults r;
  r.model = {"/m/smol", "llama", 134515008, "ab12"};
  r.config = {{"max_new_tokens", 256}, {"bench", {"advbench"}}, {"judge", "substring:paper"}};
  BenchMetrics base;
  base.n = 10;
  base.refusal_rate = 0.8;
  base.flip_rate = 0.0;
  base.flip_ci_low = 0.0;
  base.flip_ci_high = 0.32441;
  base.mcnemar_p = 1.0;
  base.ppl = 12.5;
  base.ppl_ratio = 1.0;
  base.kl = 0.0;
  BenchMetrics q = base;
  q.refusal_rate = 0.6;
  q.flip_rate = 0.25;
  q.flips = 2;
  q.reverse_flips = 0;
  q.mcnemar_p = 0.5;
  q.ppl = 12.9;
  q.ppl_ratio = 1.032;
  q.kl = 0.0123;
  BenchMetrics none;  // nothing measured: every rate undefined
  r.results = {{"fp16", {{"advbench", base}}}, {"int4:token:asym", {{"advbench", q}, {"xstest", none}}}};
  r.timing = {{"total_s", 1.5}};
  return r;
}

TEST(ResultsJson, ExactBytesKeyOrderAndNulls) {
  const std::string s = results_json(example());
  EXPECT_EQ(s, results_json(example()));  // deterministic
  const std::string expected_xstest =
      "    \"int4:token:asym\": {\n"
      "      \"advbench\": {\n"
      "        \"n\": 10,\n"
      "        \"refusal_rate\": 0.6,\n"
      "        \"flip_rate\": 0.25,\n"
      "        \"flip_ci_low\": 0.0,\n"
      "        \"flip_ci_high\": 0.32441,\n"
      "        \"flips\": 2,\n"
      "        \"reverse_flips\": 0,\n"
      "        \"mcnemar_p\": 0.5,\n"
      "        \"over_refusal\": null,\n"
      "        \"ppl\": 12.9,\n"
      "        \"ppl_ratio\": 1.032,\n"
      "        \"kl\": 0.0123\n"
      "      },\n"
      "      \"xstest\": {\n"
      "        \"n\": 0,\n"
      "        \"refusal_rate\": null,\n"
      "        \"flip_rate\": null,\n"
      "        \"flip_ci_low\": null,\n"
      "        \"flip_ci_high\": null,\n"
      "        \"flips\": null,\n"
      "        \"reverse_flips\": null,\n"
      "        \"mcnemar_p\": null,\n"
      "        \"over_refusal\": null,\n"
      "        \"ppl\": null,\n"
      "        \"ppl_ratio\": null,\n"
      "        \"kl\": null\n"
      "      }\n"
      "    }\n";
  EXPECT_NE(s.find(expected_xstest), std::string::npos) << s;
  const std::string head = std::string("{\n  \"kvaudit_version\": \"") + kVersion +
                           "\",\n  \"model\": {\n    \"path\": \"/m/smol\",\n    \"arch\": \"llama\",\n"
                           "    \"params\": 134515008,\n    \"sha256\": \"ab12\"\n  },\n"
                           "  \"config\": {\n    \"bench\": [\n      \"advbench\"\n    ],\n"
                           "    \"judge\": \"substring:paper\",\n    \"max_new_tokens\": 256\n  },\n"
                           "  \"results\": {\n    \"fp16\": {\n";
  EXPECT_EQ(s.substr(0, head.size()), head);  // config keys sorted; schemes in run order
  EXPECT_EQ(s.substr(s.size() - 39), "  \"timing\": {\n    \"total_s\": 1.5\n  }\n}\n");
}

TEST(ResultsJson, DuplicateSchemeIsALogicError) {
  RunResults r = example();
  r.results.push_back(r.results[0]);
  EXPECT_THROW(results_json(r), std::logic_error);
}

TEST(ResultsTable, RowsPerSchemeAndBench) {
  const std::string t = format_results_table(example());
  std::istringstream lines(t);
  std::string header, rule, fp16, q, xs, extra;
  std::getline(lines, header);
  std::getline(lines, rule);
  std::getline(lines, fp16);
  std::getline(lines, q);
  std::getline(lines, xs);
  EXPECT_FALSE(std::getline(lines, extra));
  EXPECT_EQ(header.rfind("scheme", 0), 0u);
  EXPECT_EQ(rule.find_first_not_of('-'), std::string::npos);
  EXPECT_EQ(rule.size(), header.size());
  EXPECT_NE(q.find("int4:token:asym  advbench"), std::string::npos) << q;
  EXPECT_NE(q.find("60.0%"), std::string::npos) << q;
  EXPECT_NE(q.find("25.0% [0.0, 32.4]"), std::string::npos) << q;
  EXPECT_NE(q.find("2/0"), std::string::npos) << q;
  EXPECT_NE(q.find("1.0320"), std::string::npos) << q;
  EXPECT_NE(q.find("0.0123"), std::string::npos) << q;
  // Undefined metrics print as "-", never 0.
  EXPECT_EQ(xs.find('%'), std::string::npos) << xs;
  EXPECT_NE(xs.find(" -"), std::string::npos) << xs;
}

}  // namespace
}  // namespace kvaudit::report
