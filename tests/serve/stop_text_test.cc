#include <gtest/gtest.h>

#include "serve/stop_text.h"

namespace kvaudit::serve {
namespace {

TEST(StopText, CutsAtTheFirstStopAcrossPieces) {
  StopText t({"END", "\n\n"});
  EXPECT_FALSE(t.append("Hello E"));
  EXPECT_EQ(t.stable_size(), 6u);  // "E" may start "END"
  EXPECT_FALSE(t.append("N"));
  EXPECT_EQ(t.stable_size(), 6u);
  EXPECT_TRUE(t.append("D and more"));
  EXPECT_EQ(t.text(), "Hello ");
  EXPECT_EQ(t.stable_size(), 6u);
  EXPECT_TRUE(t.stopped());
}

TEST(StopText, EarliestOfSeveralStopsWins) {
  StopText t({"b", "a"});
  EXPECT_TRUE(t.append("xxab"));
  EXPECT_EQ(t.text(), "xx");
}

TEST(StopText, NoStopsHoldsNothing) {
  StopText t({});
  EXPECT_FALSE(t.append("abc"));
  EXPECT_EQ(t.stable_size(), 3u);
  EXPECT_FALSE(t.reset("abcd"));
  EXPECT_EQ(t.text(), "abcd");
}

TEST(StopText, ResetRechecksTheWholeText) {
  StopText t({"cd"});
  EXPECT_FALSE(t.append("abc"));
  EXPECT_EQ(t.stable_size(), 2u);
  EXPECT_TRUE(t.reset("abcde"));
  EXPECT_EQ(t.text(), "ab");
}

}  // namespace
}  // namespace kvaudit::serve
