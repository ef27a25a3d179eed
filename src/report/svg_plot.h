// Small inline-SVG plotting helpers for report.html: a data-to-pixel scale (linear or log10),
// tick choice, and a canvas that draws axes, a legend and primitives. Styling lives in the page's
// CSS classes (html_report.cc), so the SVG only names what each mark is.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kvaudit::report {

// Ticks 1, 2 or 5 x 10^k apart, about `target` of them, covering [lo, hi] (both included when
// they fall on a multiple of the step). lo == hi yields that single value.
std::vector<double> nice_ticks(double lo, double hi, int target);
// The step nice_ticks would use (for choosing label decimals).
double nice_step(double lo, double hi, int target);
// [lo, hi] widened outwards to multiples of nice_step(lo, hi, target).
std::pair<double, double> nice_range(double lo, double hi, int target);
// Powers of ten spanning [lo, hi] (lo > 0), widened to whole decades; when that is a single
// decade, 2x and 5x are added so the axis has more than two labels. Never empty: {1, 10} when
// the range is not a positive finite one.
std::vector<double> log_ticks(double lo, double hi);
// A tick value as text with as many decimals as `step` needs: (0.25, 0.05) -> "0.25".
std::string tick_label(double v, double step);
// A power-of-ten tick as text: 0.01 -> "0.01", 1000 -> "1000", 1e6 -> "1e6".
std::string log_tick_label(double v);

struct LegendItem {
  std::string label;
  std::string css_class;  // the class of the swatch: same look as the marks it names
  enum class Kind { kLine, kBox, kDot, kDash } kind = Kind::kBox;
};

class SvgPlot {
 public:
  // Canvas of width x height pixels; the plot area is inset by the margins.
  SvgPlot(double width, double height, double margin_left, double margin_right, double margin_top,
          double margin_bottom);

  void set_x(double lo, double hi, bool log = false);
  void set_y(double lo, double hi, bool log = false);
  double px(double x) const;  // data x -> pixel x (log axes clamp x to the domain's floor)
  double py(double y) const;
  double left() const { return ml_; }
  double right() const { return width_ - mr_; }
  double top() const { return mt_; }
  double bottom() const { return height_ - mb_; }

  // Axes with tick marks, labels and a title; grid lines across the plot area when asked.
  void y_axis(const std::vector<double>& ticks, const std::function<std::string(double)>& label,
              std::string_view title, bool grid = true);
  void x_axis(const std::vector<double>& ticks, const std::function<std::string(double)>& label,
              std::string_view title, bool grid = false);
  // Category i is centred at data x = i (set_x(-0.5, n - 0.5)); every `stride`-th label shown.
  void x_categories(const std::vector<std::string>& labels, int stride, std::string_view title);
  // A row of legend entries above the plot area, right-aligned.
  void legend(const std::vector<LegendItem>& items);

  // Primitives in pixel coordinates; every text argument is escaped here.
  void line(double x1, double y1, double x2, double y2, std::string_view css_class);
  void rect(double x, double y, double w, double h, std::string_view css_class,
            std::string_view tooltip = {});
  void circle(double cx, double cy, double r, std::string_view css_class,
              std::string_view tooltip = {});
  void polyline(const std::vector<std::pair<double, double>>& pts, std::string_view css_class);
  void polygon(const std::vector<std::pair<double, double>>& pts, std::string_view css_class);
  void path(std::string_view d, std::string_view css_class);
  // anchor: "start", "middle" or "end".
  void text(double x, double y, std::string_view s, std::string_view css_class,
            std::string_view anchor = "start");
  // A vertical error bar from y_lo to y_hi (pixels) with caps of half-width w.
  void whisker(double x, double y_lo, double y_hi, double w, std::string_view css_class);

  // The finished <svg> element, scaled to its container's width (viewBox keeps proportions).
  std::string str(std::string_view aria_label) const;

 private:
  double width_, height_, ml_, mr_, mt_, mb_;
  double x0_ = 0, x1_ = 1, y0_ = 0, y1_ = 1;
  bool xlog_ = false, ylog_ = false;
  std::string body_;
};

// Pixel coordinates as they go into SVG attributes (one decimal).
std::string coord(double v);

}  // namespace kvaudit::report
