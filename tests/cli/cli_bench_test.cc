// kvaudit bench --kv-mix: several schemes share each batch (sequence b takes scheme b mod count),
// as a sweep runs them; it excludes --kv and --kv-policy.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "../common/run_cli.h"

namespace {

using kvaudit::testing::run_cli;

const std::string kModel = std::string(KVAUDIT_FIXTURES) + "/models/llama";

TEST(CliBench, KvMixRunsTheSchemesInOneBatch) {
  const auto r = run_cli({"bench", "--model", kModel, "--device", "cpu", "--threads", "1", "--batch", "3",
                          "--prompt-len", "4", "--gen", "2", "--repeat", "1", "--json", "--kv-mix", "fp16",
                          "int4:token:asym", "fp8e4m3"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["kv"], "3 schemes round-robin over each batch: fp16 + int4:token:asym + fp8e4m3") << r.out;
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_GT(j["results"][0]["decode_tok_s"].get<double>(), 0.0);
  EXPECT_GT(j["results"][0]["kv_bytes"].get<int64_t>(), 0);
  // The whole call's rate (prefill included) is below the decode rate.
  EXPECT_GT(j["results"][0]["generated_tok_s"].get<double>(), 0.0);
  EXPECT_LT(j["results"][0]["generated_tok_s"].get<double>(), j["results"][0]["decode_tok_s"].get<double>());
}

TEST(CliBench, KvMixExcludesKv) {
  const auto r = run_cli({"bench", "--model", kModel, "--device", "cpu", "--kv", "int4", "--kv-mix", "fp16", "int8"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "kvaudit: error: --kv-mix excludes --kv and --kv-policy\n");
}

TEST(CliBench, KvMixWithABadSchemeNamesIt) {
  const auto r = run_cli({"bench", "--model", kModel, "--device", "cpu", "--kv-mix", "fp16", "int99:token"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("int99"), std::string::npos) << r.err;
}

}  // namespace
