#include "report/svg_plot.h"

#include <cmath>

#include <gtest/gtest.h>

namespace kvaudit::report {
namespace {

TEST(NiceTicks, StepsOfOneTwoFive) {
  EXPECT_EQ(nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_EQ(nice_ticks(0, 575, 12), (std::vector<double>{0, 50, 100, 150, 200, 250, 300, 350, 400,
                                                          450, 500, 550}));
  EXPECT_EQ(nice_ticks(-0.3, 1.2, 6), (std::vector<double>{-0.2, 0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2}));
  EXPECT_DOUBLE_EQ(nice_step(0, 1, 5), 0.2);
  EXPECT_DOUBLE_EQ(nice_step(0, 0.45, 5), 0.1);
  EXPECT_DOUBLE_EQ(nice_step(0, 7, 5), 1.0);   // raw 1.4 rounds to 1
  EXPECT_DOUBLE_EQ(nice_step(0, 9, 5), 2.0);   // raw 1.8 rounds to 2
  EXPECT_EQ(nice_ticks(3, 3, 5), (std::vector<double>{3}));
  EXPECT_EQ(nice_ticks(0, INFINITY, 5), (std::vector<double>{0}));
}

TEST(NiceTicks, RangeWidensToStepMultiples) {
  EXPECT_EQ(nice_range(0, 0.44, 5), (std::pair<double, double>{0.0, 0.5}));
  EXPECT_EQ(nice_range(-0.13, 1.0, 10), (std::pair<double, double>{-0.2, 1.0}));
  EXPECT_EQ(nice_range(0, 1.0, 5), (std::pair<double, double>{0.0, 1.0}));
}

TEST(LogTicks, DecadesAndSingleDecadeFill) {
  EXPECT_EQ(log_ticks(0.8, 794), (std::vector<double>{0.1, 1, 10, 100, 1000}));
  EXPECT_EQ(log_ticks(1, 1), (std::vector<double>{1, 2, 5, 10}));
  EXPECT_EQ(log_ticks(0, 10), (std::vector<double>{1, 10}));
  EXPECT_EQ(log_ticks(1, INFINITY), (std::vector<double>{1, 10}));
}

TEST(TickLabels, DecimalsFollowTheStep) {
  EXPECT_EQ(tick_label(0.25, 0.05), "0.25");
  EXPECT_EQ(tick_label(20, 20), "20");
  EXPECT_EQ(tick_label(0.3, 0.1), "0.3");
  EXPECT_EQ(tick_label(-1e-17, 0.1), "0.0");
  EXPECT_EQ(log_tick_label(0.01), "0.01");
  EXPECT_EQ(log_tick_label(1), "1");
  EXPECT_EQ(log_tick_label(1000), "1000");
  EXPECT_EQ(log_tick_label(5), "5");
  EXPECT_EQ(log_tick_label(1e6), "1e6");
}

TEST(SvgPlot, MapsDataToThePlotArea) {
  SvgPlot p(500, 300, 50, 10, 20, 30);  // plot area x 50..490, y 20..270
  p.set_x(0, 10);
  p.set_y(0, 1);
  EXPECT_DOUBLE_EQ(p.px(0), 50);
  EXPECT_DOUBLE_EQ(p.px(10), 490);
  EXPECT_DOUBLE_EQ(p.px(5), 270);
  EXPECT_DOUBLE_EQ(p.py(0), 270);
  EXPECT_DOUBLE_EQ(p.py(1), 20);
  p.set_y(1, 1000, true);
  EXPECT_DOUBLE_EQ(p.py(10), 270 - 250.0 / 3);
  EXPECT_DOUBLE_EQ(p.py(0.001), 270);  // below the log domain: clamped to its floor
}

TEST(SvgPlot, EscapesTextAndEmitsElements) {
  SvgPlot p(100, 100, 10, 10, 10, 10);
  p.text(5, 5, "<b>&", "tick");
  p.rect(1, 50, 10, -20, "bar", "tip \"x\"");
  const std::string s = p.str("a \"plot\"");
  EXPECT_NE(s.find(">&lt;b&gt;&amp;</text>"), std::string::npos);
  // A negative height is drawn upwards from y.
  EXPECT_NE(s.find("<rect class=\"bar\" x=\"1.0\" y=\"30.0\" width=\"10.0\" height=\"20.0\">"
                   "<title>tip &quot;x&quot;</title></rect>"),
            std::string::npos);
  EXPECT_EQ(s.rfind("<svg viewBox=\"0 0 100.0 100.0\"", 0), 0u);
  EXPECT_NE(s.find("aria-label=\"a &quot;plot&quot;\""), std::string::npos);
  EXPECT_EQ(s.find("<b>"), std::string::npos);
}

}  // namespace
}  // namespace kvaudit::report
