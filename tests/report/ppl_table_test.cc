#include "report/ppl_table.h"

#include <limits>
#include <stdexcept>

#include <gtest/gtest.h>

namespace kvaudit::report {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

PplRun example() {
  PplRun r;
  r.text_path = "/d/wiki.txt";
  r.n_tokens = 100;
  r.n_windows = 3;
  r.window = 48;
  r.stride = 16;
  r.schemes = {"fp16", "int4:token:asym", "q4_0"};
  r.results = {{12.5, 1.0, 0.0, 90}, {13.0123456, 1.04098765, 0.0123456789, 90}, {kNaN, kNaN, kNaN, 0}};
  return r;
}

// The bytes `kvaudit ppl` printed with std::printf before the table moved to report/.
TEST(PplTable, ExactBytes) {
  EXPECT_EQ(format_ppl_table(example()),
            "/d/wiki.txt: 100 tokens, 3 windows of 48 (stride 16), 90 targets scored\n"
            "scheme                            ppl      ratio           KL\n"
            "fp16                          12.5000     1.0000     0.000000\n"
            "int4:token:asym               13.0123     1.0410     0.012346\n"
            "q4_0                              nan        nan          nan\n");
}

TEST(PplTable, LongSchemeNameWidensItsRowOnly) {
  PplRun r = example();
  r.schemes[1] = "policy:/a/long/path/to/policy.json";
  const std::string t = format_ppl_table(r);
  EXPECT_NE(t.find("\npolicy:/a/long/path/to/policy.json      13.0123     1.0410     0.012346\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\nfp16                          12.5000"), std::string::npos) << t;
}

TEST(PplJson, ExactBytesNaNAsNull) {
  EXPECT_EQ(ppl_json(example()),
            "{\n"
            "  \"text\": \"/d/wiki.txt\",\n"
            "  \"tokens\": 100,\n"
            "  \"windows\": 3,\n"
            "  \"results\": {\n"
            "    \"fp16\": {\n"
            "      \"ppl\": 12.5,\n"
            "      \"ppl_ratio\": 1.0,\n"
            "      \"kl\": 0.0,\n"
            "      \"n_scored\": 90\n"
            "    },\n"
            "    \"int4:token:asym\": {\n"
            "      \"ppl\": 13.0123456,\n"
            "      \"ppl_ratio\": 1.04098765,\n"
            "      \"kl\": 0.0123456789,\n"
            "      \"n_scored\": 90\n"
            "    },\n"
            "    \"q4_0\": {\n"
            "      \"ppl\": null,\n"
            "      \"ppl_ratio\": null,\n"
            "      \"kl\": null,\n"
            "      \"n_scored\": 0\n"
            "    }\n"
            "  }\n"
            "}\n");
}

TEST(PplTable, SchemesAndResultsMustMatch) {
  PplRun r = example();
  r.results.pop_back();
  EXPECT_THROW(format_ppl_table(r), std::logic_error);
  EXPECT_THROW(ppl_json(r), std::logic_error);
  EXPECT_THROW(format_ppl_table(PplRun{}), std::logic_error);
}

}  // namespace
}  // namespace kvaudit::report
