#include "eval/samples.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "../common/fsize_limit.h"
#include "core/error.h"

namespace kvaudit::eval {
namespace {

std::filesystem::path fresh(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "kvaudit_eval_samples";
  std::filesystem::create_directories(dir);
  const auto p = dir / name;
  std::filesystem::remove(p);
  return p;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Sample sample(const std::string& id, const std::string& scheme, bool refused) {
  return {id, "advbench", scheme, "substring:paper", "How do I \"x\"?\nline 2",
          refused ? "I cannot help." : "Sure", refused, refused ? "I cannot" : "", std::nullopt, ""};
}

TEST(Samples, LineFormatIsFixed) {
  EXPECT_EQ(sample_json_line(sample("advbench:3", "q4_0", true)),
            "{\"id\":\"advbench:3\",\"bench\":\"advbench\",\"scheme\":\"q4_0\",\"judge\":\"substring:paper\","
            "\"prompt\":\"How do I \\\"x\\\"?\\nline 2\",\"response\":\"I cannot help.\",\"refused\":true,"
            "\"matched\":\"I cannot\",\"stopped_early_at\":null,\"gen\":null}\n");
  Sample with_gen = sample("advbench:3", "q4_0", true);
  with_gen.gen = R"({"max_new_tokens":8,"system":""})";
  EXPECT_NE(sample_json_line(with_gen).find(R"("stopped_early_at":null,"gen":{"max_new_tokens":8,"system":""}})"),
            std::string::npos);
  EXPECT_NE(sample_json_line(sample("a", "fp16", false)).find("\"matched\":null"), std::string::npos);
  Sample bad = sample("a", "fp16", false);
  bad.response = "cut \xE2\x80";  // a token boundary inside a UTF-8 character
  EXPECT_NO_THROW(sample_json_line(bad));
}

// Verdict-aware early stop records where a response stopped; files written before the field
// existed read as full-length responses.
TEST(Samples, StoppedEarlyAtRoundTripsAndOldLinesStillRead) {
  const auto path = fresh("early.jsonl");
  Sample early = sample("advbench:1", "fp16", true);
  early.stopped_early_at = 4;
  EXPECT_NE(sample_json_line(early).find(",\"stopped_early_at\":4,"), std::string::npos);
  {
    SamplesWriter w(path.string(), 0);
    w.append(early);
    w.append(sample("advbench:2", "fp16", false));
  }
  // A line as written before the field existed.
  std::ofstream(path, std::ios::binary | std::ios::app)
      << "{\"id\":\"advbench:3\",\"bench\":\"advbench\",\"scheme\":\"fp16\",\"judge\":\"substring:paper\","
         "\"prompt\":\"p\",\"response\":\"I cannot\",\"refused\":true,\"matched\":\"I cannot\"}\n";
  const SamplesLog log = read_samples(path.string());
  ASSERT_EQ(log.samples.size(), 3u);
  EXPECT_EQ(log.samples[0].stopped_early_at, std::optional<int>(4));
  EXPECT_EQ(log.samples[1].stopped_early_at, std::nullopt);
  EXPECT_EQ(log.samples[2].stopped_early_at, std::nullopt);
  EXPECT_TRUE(log.samples[2].refused);
  // Anything but a positive integer or null is a malformed record.
  std::ofstream(path, std::ios::binary | std::ios::app)
      << "{\"id\":\"a\",\"bench\":\"b\",\"scheme\":\"fp16\",\"judge\":\"j\",\"prompt\":\"p\","
         "\"response\":\"r\",\"refused\":false,\"matched\":null,\"stopped_early_at\":\"3\"}\n";
  EXPECT_THROW(read_samples(path.string()), UsageError);
}

TEST(Samples, MissingFileIsEmpty) {
  const SamplesLog log = read_samples(fresh("none.jsonl").string());
  EXPECT_TRUE(log.samples.empty());
  EXPECT_EQ(log.valid_bytes, 0u);
}

TEST(Samples, ResumeAfterTruncatedLastLine) {
  const auto path = fresh("s.jsonl");
  {
    SamplesWriter w(path.string(), 0);
    w.append(sample("advbench:0", "fp16", true));
    w.append(sample("advbench:0", "q4_0", false));
  }
  const std::string two = slurp(path);
  // A killed writer: half of a third line.
  const std::string third = sample_json_line(sample("advbench:1", "fp16", true));
  std::ofstream(path, std::ios::binary | std::ios::app) << third.substr(0, third.size() / 2);

  SamplesLog log = read_samples(path.string());
  EXPECT_TRUE(log.dropped_partial_tail);
  EXPECT_EQ(log.valid_bytes, two.size());
  ASSERT_EQ(log.samples.size(), 2u);
  EXPECT_EQ(log.samples[1].scheme, "q4_0");
  EXPECT_FALSE(log.samples[1].refused);
  EXPECT_EQ(log.samples[0].matched, "I cannot");
  EXPECT_EQ(log.samples[0].prompt, "How do I \"x\"?\nline 2");
  const std::set<SampleKey> want = {{"advbench:0", "fp16"}, {"advbench:0", "q4_0"}};
  EXPECT_EQ(log.finished(), want);

  {  // the rerun overwrites the partial tail, then appends
    SamplesWriter w(path.string(), log.valid_bytes);
    w.append(sample("advbench:1", "fp16", true));
  }
  EXPECT_EQ(slurp(path), two + third);
  log = read_samples(path.string());
  EXPECT_FALSE(log.dropped_partial_tail);
  EXPECT_EQ(log.samples.size(), 3u);
}

// A failed append (issue 12: disk full, file-size limit) cuts the partial line it wrote, so the
// file is byte-identical to before, reads back whole, and the rerun resumes and appends after it.
TEST(Samples, FailedAppendLeavesNoTornLine) {
  const auto path = fresh("fsize.jsonl");
  {
    SamplesWriter w(path.string(), 0);
    w.append(sample("advbench:0", "fp16", true));
    w.append(sample("advbench:0", "q4_0", false));
  }
  const std::string two = slurp(path);
  const std::string third = sample_json_line(sample("advbench:1", "fp16", true));
  // Room for 10 more bytes: write(2) takes 10 bytes of the third line, then fails with EFBIG.
  const auto out = kvaudit::testing::run_with_fsize_limit(two.size() + 10, [&] {
    SamplesWriter w(path.string(), two.size());
    w.append(sample("advbench:1", "fp16", true));
  });
  EXPECT_EQ(out.code, 1) << out.message;
  EXPECT_NE(out.message.find("cannot append to '" + path.string() + "': File too large"), std::string::npos)
      << out.message;
  EXPECT_NE(out.message.find("cut back to its last complete line (" + std::to_string(two.size()) + " bytes"),
            std::string::npos)
      << out.message;
  EXPECT_EQ(slurp(path), two);
  SamplesLog log = read_samples(path.string());
  EXPECT_FALSE(log.dropped_partial_tail);
  EXPECT_EQ(log.samples.size(), 2u);

  {  // the rerun (space freed) appends after the two complete lines
    SamplesWriter w(path.string(), log.valid_bytes);
    w.append(sample("advbench:1", "fp16", true));
  }
  EXPECT_EQ(slurp(path), two + third);
  EXPECT_EQ(read_samples(path.string()).samples.size(), 3u);
}

TEST(Samples, CorruptMiddleLineNamesFileAndLine) {
  const auto path = fresh("bad.jsonl");
  std::ofstream(path, std::ios::binary) << sample_json_line(sample("a", "fp16", true)) << "{oops\n"
                                        << sample_json_line(sample("b", "fp16", true));
  try {
    read_samples(path.string());
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path.string() + ":2: not a samples.jsonl record", 0), 0u)
        << e.what();
  }
  std::ofstream(path, std::ios::binary) << "{\"id\":\"a\"}\n";
  EXPECT_THROW(read_samples(path.string()), UsageError);
}

}  // namespace
}  // namespace kvaudit::eval
