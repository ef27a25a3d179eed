#include "eval/progress.h"

#include <unistd.h>

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

// A resumed run: what an earlier run finished counts as done, not into the rate (else the first
// line after a resume would show millions of prompts/s and an ETA of 0).
TEST(Progress, ResumedUnitsAreDoneButNotRate) {
  EXPECT_EQ(format_progress("eval", "prompts", 100, 120, 0.0, false, kProgressBarWidth, 100),
            "eval: 100/120 (83%), - prompts/s, ETA -");
  EXPECT_EQ(format_progress("eval", "prompts", 100, 120, 10.0, false, kProgressBarWidth, 100),
            "eval: 100/120 (83%), - prompts/s, ETA -");
  EXPECT_EQ(format_progress("eval", "prompts", 110, 120, 10.0, false, kProgressBarWidth, 100),
            "eval: 110/120 (91%), 1 prompts/s, ETA 0:10");
  char buf[1024] = {};
  std::FILE* sink = fmemopen(buf, sizeof buf, "w");
  ASSERT_NE(sink, nullptr);
  Progress p(sink, false, "ppl", 8, "windows", 0.0);
  p.resumed(4);
  p.update(4, 0.5);
  p.update(6, 4.5);  // 2 computed in 4.5 s
  p.finish();
  std::fclose(sink);
  EXPECT_EQ(std::string(buf),
            "ppl: 4/8 (50%), - windows/s, ETA -\n"
            "ppl: 6/8 (75%), 0.44 windows/s, ETA 0:05\n");  // 2 left at 2 per 4.5 s
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

TEST(Progress, TtyRedrawsOneLineWithBarCountsAndEta) {
  char buf[4096] = {};
  std::FILE* sink = fmemopen(buf, sizeof buf, "w");
  ASSERT_NE(sink, nullptr);
  Progress p(sink, true, "eval", 10, "prompts");
  p.update(1, 1.0);   // 1 prompt/s, 9 left: ETA 0:09
  p.update(2, 1.05);  // within 0.1 s of the last redraw: throttled
  p.update(10, 4.0);  // done: full bar, ETA 0:00
  p.finish();         // nothing new to draw: only the newline
  Progress q(sink, true, "eval", 10, "prompts");
  q.update(1, 1.0);
  q.update(3, 1.05);  // throttled, so finish() draws it: 3/1.05 = 2.9 prompts/s, 7 left: ETA 0:02
  q.finish();
  std::fclose(sink);
  EXPECT_EQ(std::string(buf),
            "\r\033[Keval [##                      ]  1/10  10% 1 prompts/s ETA 0:09"
            "\r\033[Keval [########################] 10/10 100% 2.5 prompts/s ETA 0:00\n"
            "\r\033[Keval [##                      ]  1/10  10% 1 prompts/s ETA 0:09"
            "\r\033[Keval [#######                 ]  3/10  30% 2.9 prompts/s ETA 0:02\n");
}

// --quiet hands in no sink: nothing reaches stderr (captured here), while a stderr sink does.
TEST(Progress, NullSinkWritesNothing) {
  std::FILE* capture = std::tmpfile();
  ASSERT_NE(capture, nullptr);
  std::fflush(stderr);
  const int saved = dup(2);
  ASSERT_GE(saved, 0);
  ASSERT_GE(dup2(fileno(capture), 2), 0);
  {
    Progress quiet(nullptr, false, "quiet", 3, "prompts", 0.0);
    quiet.update(1, 0.5);
    quiet.update(3, 1.5);
    quiet.finish();
    Progress loud(stderr, false, "loud", 2, "prompts", 0.0);
    loud.update(2, 1.0);
    loud.finish();
  }
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::rewind(capture);
  char buf[1024] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, capture);
  std::fclose(capture);
  EXPECT_EQ(std::string(buf, n), "loud: 2/2 (100%), 2 prompts/s, ETA 0:00\n");
}

}  // namespace
}  // namespace kvaudit::eval
