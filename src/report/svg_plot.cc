#include "report/svg_plot.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "report/html_format.h"

namespace kvaudit::report {

namespace {

// A nice step as m x 10^e with m in {1, 2, 5, 10}.
struct Step {
  double m = 1;
  int e = 0;
  double value() const { return e >= 0 ? m * std::pow(10.0, e) : m / std::pow(10.0, -e); }
  // k steps, computed so that decimal ticks are the doubles their literals give (3 x 0.2 is
  // 6 / 10 = 0.6, not 0.6000000000000001): powers of ten up to 1e22 are exact doubles.
  double times(double k) const { return e >= 0 ? k * m * std::pow(10.0, e) : k * m / std::pow(10.0, -e); }
};

Step step_of(double lo, double hi, int target) {
  const double span = hi - lo;
  if (!(span > 0) || !std::isfinite(span) || target < 1) return {};
  const double raw = span / target;
  const int e = static_cast<int>(std::floor(std::log10(raw)));
  const double f = raw / std::pow(10.0, e);
  // The one of 1, 2, 5, 10 nearest the raw step (in ratio): about `target` intervals.
  const double m = f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0;
  return {m, e};
}

}  // namespace

double nice_step(double lo, double hi, int target) { return step_of(lo, hi, target).value(); }

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(hi - lo)) return {lo};
  const Step step = step_of(lo, hi, target);
  const double eps = step.value() * 1e-9;
  std::vector<double> ticks;
  for (double k = std::ceil((lo - eps) / step.value());; k += 1.0) {
    double v = step.times(k);
    if (v > hi + eps) break;
    if (std::fabs(v) < eps) v = 0.0;  // no "-0"
    ticks.push_back(v);
  }
  return ticks;
}

std::pair<double, double> nice_range(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo - 1.0, hi + 1.0};
  if (!std::isfinite(hi - lo)) return {lo, hi};
  const Step step = step_of(lo, hi, target);
  const double eps = step.value() * 1e-9;
  return {step.times(std::floor((lo + eps) / step.value())),
          step.times(std::ceil((hi - eps) / step.value()))};
}

std::vector<double> log_ticks(double lo, double hi) {
  if (!(lo > 0) || !(hi >= lo) || !std::isfinite(hi)) return {1, 10};
  const int k0 = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int k1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (k1 <= k0) k1 = k0 + 1;
  std::vector<double> ticks;
  for (int k = k0; k <= k1; ++k) {
    const double d = std::pow(10.0, k);
    ticks.push_back(d);
    if (k1 - k0 == 1 && k < k1) {
      ticks.push_back(2 * d);
      ticks.push_back(5 * d);
    }
  }
  return ticks;
}

std::string tick_label(double v, double step) {
  int decimals = 0;
  if (step > 0 && step < 1) decimals = static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  if (std::fabs(v) < step * 1e-9) v = 0.0;
  return fmt::format("{:.{}f}", v, std::clamp(decimals, 0, 6));
}

std::string log_tick_label(double v) {
  const double k = std::log10(v);
  const double kr = std::round(k);
  if (std::fabs(k - kr) > 1e-9 || (kr >= -3 && kr <= 4)) {
    // Plain notation with only the decimals the value needs: 0.01, 0.2, 5, 1000.
    const int decimals = std::max(0, static_cast<int>(std::ceil(-k - 1e-9)));
    return fmt::format("{:.{}f}", v, decimals);
  }
  return fmt::format("1e{}", static_cast<int>(kr));
}

std::string coord(double v) {
  if (!std::isfinite(v)) v = 0.0;
  return fmt::format("{:.1f}", v);
}

SvgPlot::SvgPlot(double width, double height, double margin_left, double margin_right,
                 double margin_top, double margin_bottom)
    : width_(width), height_(height), ml_(margin_left), mr_(margin_right), mt_(margin_top),
      mb_(margin_bottom) {}

void SvgPlot::set_x(double lo, double hi, bool log) {
  x0_ = lo;
  x1_ = hi;
  xlog_ = log;
}

void SvgPlot::set_y(double lo, double hi, bool log) {
  y0_ = lo;
  y1_ = hi;
  ylog_ = log;
}

namespace {

// Position of v in [lo, hi] as a fraction (log10 on log axes; a degenerate domain maps to 0.5).
double fraction(double v, double lo, double hi, bool log) {
  if (log) {
    v = std::log10(std::max(v, lo));
    lo = std::log10(lo);
    hi = std::log10(hi);
  }
  if (!(hi > lo)) return 0.5;
  return (v - lo) / (hi - lo);
}

}  // namespace

double SvgPlot::px(double x) const { return ml_ + fraction(x, x0_, x1_, xlog_) * (right() - ml_); }

double SvgPlot::py(double y) const {
  return bottom() - fraction(y, y0_, y1_, ylog_) * (bottom() - mt_);
}

void SvgPlot::y_axis(const std::vector<double>& ticks,
                     const std::function<std::string(double)>& label, std::string_view title,
                     bool grid) {
  line(left(), top(), left(), bottom(), "axis");
  for (double t : ticks) {
    const double y = py(t);
    if (grid) line(left(), y, right(), y, "grid");
    line(left() - 5, y, left(), y, "axis");
    text(left() - 8, y + 4, label(t), "tick", "end");
  }
  // Rotated title centred on the axis, clear of the tick labels.
  body_ += fmt::format(
      "<text class=\"axis-title\" text-anchor=\"middle\" transform=\"translate({},{}) "
      "rotate(-90)\">{}</text>",
      coord(left() - ml_ + 16), coord((top() + bottom()) / 2), escape_html(title));
}

void SvgPlot::x_axis(const std::vector<double>& ticks,
                     const std::function<std::string(double)>& label, std::string_view title,
                     bool grid) {
  line(left(), bottom(), right(), bottom(), "axis");
  for (double t : ticks) {
    const double x = px(t);
    if (grid) line(x, top(), x, bottom(), "grid");
    line(x, bottom(), x, bottom() + 5, "axis");
    text(x, bottom() + 19, label(t), "tick", "middle");
  }
  text((left() + right()) / 2, bottom() + 40, title, "axis-title", "middle");
}

void SvgPlot::x_categories(const std::vector<std::string>& labels, int stride,
                           std::string_view title) {
  line(left(), bottom(), right(), bottom(), "axis");
  stride = std::max(stride, 1);
  for (size_t i = 0; i < labels.size(); i += stride) {
    const double x = px(static_cast<double>(i));
    line(x, bottom(), x, bottom() + 5, "axis");
    text(x, bottom() + 19, labels[i], "tick", "middle");
  }
  text((left() + right()) / 2, bottom() + 40, title, "axis-title", "middle");
}

void SvgPlot::legend(const std::vector<LegendItem>& items) {
  // Laid out right to left from the plot's right edge, at a width estimated from the text
  // (7 px per character at the legend's 12 px font).
  double x = right();
  const double y = top() - 14;
  for (auto it = items.rbegin(); it != items.rend(); ++it) {
    const double w = 7.0 * static_cast<double>(it->label.size());
    x -= w;
    text(x, y + 4, it->label, "legend", "start");
    x -= 22;
    switch (it->kind) {
      case LegendItem::Kind::kLine: line(x, y, x + 16, y, it->css_class); break;
      case LegendItem::Kind::kDash: line(x, y, x + 16, y, it->css_class); break;
      case LegendItem::Kind::kDot: circle(x + 8, y, 4.5, it->css_class); break;
      case LegendItem::Kind::kBox: rect(x + 2, y - 6, 12, 12, it->css_class); break;
    }
    x -= 16;
  }
}

void SvgPlot::line(double x1, double y1, double x2, double y2, std::string_view css_class) {
  body_ += fmt::format("<line class=\"{}\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>",
                       escape_html(css_class), coord(x1), coord(y1), coord(x2), coord(y2));
}

namespace {

// A <title> child shows as a tooltip on hover.
std::string tooltip_element(std::string_view tooltip) {
  return tooltip.empty() ? std::string() : "<title>" + escape_html(tooltip) + "</title>";
}

std::string points_attr(const std::vector<std::pair<double, double>>& pts) {
  std::string s;
  for (const auto& [x, y] : pts) {
    if (!s.empty()) s += ' ';
    s += coord(x) + ',' + coord(y);
  }
  return s;
}

}  // namespace

void SvgPlot::rect(double x, double y, double w, double h, std::string_view css_class,
                   std::string_view tooltip) {
  if (h < 0) {
    y += h;
    h = -h;
  }
  const std::string tip = tooltip_element(tooltip);
  body_ += fmt::format("<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"", escape_html(css_class),
                       coord(x), coord(y), coord(std::max(w, 0.0)), coord(h));
  body_ += tip.empty() ? "/>" : ">" + tip + "</rect>";
}

void SvgPlot::circle(double cx, double cy, double r, std::string_view css_class,
                     std::string_view tooltip) {
  const std::string tip = tooltip_element(tooltip);
  body_ += fmt::format("<circle class=\"{}\" cx=\"{}\" cy=\"{}\" r=\"{}\"", escape_html(css_class),
                       coord(cx), coord(cy), coord(r));
  body_ += tip.empty() ? "/>" : ">" + tip + "</circle>";
}

void SvgPlot::polyline(const std::vector<std::pair<double, double>>& pts,
                       std::string_view css_class) {
  if (pts.empty()) return;
  body_ += fmt::format("<polyline class=\"{}\" points=\"{}\"/>", escape_html(css_class),
                       points_attr(pts));
}

void SvgPlot::polygon(const std::vector<std::pair<double, double>>& pts,
                      std::string_view css_class) {
  if (pts.empty()) return;
  body_ += fmt::format("<polygon class=\"{}\" points=\"{}\"/>", escape_html(css_class),
                       points_attr(pts));
}

void SvgPlot::path(std::string_view d, std::string_view css_class) {
  if (d.empty()) return;
  body_ += fmt::format("<path class=\"{}\" d=\"{}\"/>", escape_html(css_class), escape_html(d));
}

void SvgPlot::text(double x, double y, std::string_view s, std::string_view css_class,
                   std::string_view anchor) {
  body_ += fmt::format("<text class=\"{}\" x=\"{}\" y=\"{}\" text-anchor=\"{}\">{}</text>",
                       escape_html(css_class), coord(x), coord(y), escape_html(anchor),
                       escape_html(s));
}

void SvgPlot::whisker(double x, double y_lo, double y_hi, double w, std::string_view css_class) {
  line(x, y_lo, x, y_hi, css_class);
  line(x - w, y_lo, x + w, y_lo, css_class);
  line(x - w, y_hi, x + w, y_hi, css_class);
}

std::string SvgPlot::str(std::string_view aria_label) const {
  return fmt::format(
      "<svg viewBox=\"0 0 {} {}\" width=\"{}\" "
      "height=\"{}\" role=\"img\" aria-label=\"{}\">{}</svg>",
      coord(width_), coord(height_), coord(width_), coord(height_), escape_html(aria_label),
      body_);
}

}  // namespace kvaudit::report
