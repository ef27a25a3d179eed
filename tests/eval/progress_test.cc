#include "eval/progress.h"

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace kvaudit::eval {
namespace {

TEST(Progress, Durations) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(65.4), "1:05");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(-1), "--:--");
}

TEST(Progress, PlainAndTtyLines) {
  EXPECT_EQ(format_progress("eval", "prompts", 45, 120, 20.0, false),
            "eval: 45/120 (37%), 2.2 prompts/s, ETA 0:33");
  EXPECT_EQ(format_progress("eval", "prompts", 45, 120, 20.0, true, 8),
            "eval [###     ]  45/120  37% 2.2 prompts/s ETA 0:33");
  EXPECT_EQ(format_progress("eval", "prompts", 0, 120, 0.0, false),
            "eval: 0/120 (0%), - prompts/s, ETA -");
  EXPECT_EQ(format_progress("eval", "prompts", 120, 120, 60.0, true, 4),
            "eval [####] 120/120 100% 2 prompts/s ETA 0:00");
}

TEST(Progress, PlainModeThrottlesAndFinishes) {
  char buf[4096] = {};
  std::FILE* sink = fmemopen(buf, sizeof buf, "w");
  ASSERT_NE(sink, nullptr);
  Progress p(sink, false, "eval", 10, "prompts", 10.0);
  p.update(1, 1.0);   // first line
  p.update(2, 5.0);   // throttled
  p.update(5, 11.5);  // 10.5 s after the first
  p.finish();
  Progress q(sink, false, "eval", 10, "prompts", 10.0);
  q.update(1, 1.0);
  q.update(7, 2.0);  // throttled, so finish() shows it
  q.finish();
  std::fclose(sink);
  EXPECT_EQ(std::string(buf),
            "eval: 1/10 (10%), 1 prompts/s, ETA 0:09\n"
            "eval: 5/10 (50%), 0.43 prompts/s, ETA 0:12\n"  // finish() adds no repeat
            "eval: 1/10 (10%), 1 prompts/s, ETA 0:09\n"
            "eval: 7/10 (70%), 3.5 prompts/s, ETA 0:01\n");
}

TEST(Progress, NullSinkIsQuiet) {
  Progress p(nullptr, true, "eval", 3);
  p.update(1, 0.5);
  p.finish();
  SUCCEED();
}

}  // namespace
}  // namespace kvaudit::eval
