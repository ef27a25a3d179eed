#include "report/report_plots.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "report/html_format.h"
#include "report/svg_plot.h"

namespace kvaudit::report {

namespace {

using nlohmann::json;
using Pts = std::vector<std::pair<double, double>>;

// Page geometry: the content column is 1200 px wide; SVGs scale down with it.
constexpr double kWidth = 1160;
constexpr double kMarginLeft = 78, kMarginRight = 24, kMarginTop = 44, kMarginBottom = 56;

std::optional<double> threshold(const json& report, std::string_view key) {
  const json* t = opt_object(report, "thresholds");
  return t ? opt_number(*t, key) : std::nullopt;
}

// Percent axis labels with the decimals the tick step needs.
std::function<std::string(double)> percent_label(double step) {
  return [step](double v) { return tick_label(v * 100.0, step * 100.0) + "%"; };
}

std::string caption(std::string_view s) { return "<figcaption>" + std::string(s) + "</figcaption>"; }

// y-axis top for rates: the largest value (and any threshold line) with headroom, never a
// degenerate axis when every rate is 0.
double rate_axis_top(double max_value) {
  return nice_range(0.0, std::max(max_value * 1.1, 0.05), 5).second;
}

// Layer number of an entry, or -1.
int layer_of(const json& e) {
  const auto l = opt_number(e, "layer");
  return l ? static_cast<int>(*l) : -1;
}

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
  return s;
}

}  // namespace

// ---------------------------------------------------------------- phase transition

Figure phase_plot(const json& report) {
  const json* rows = opt_array(report, "phase_transition");
  if (!rows) return {};
  std::vector<json> pts(rows->begin(), rows->end());
  // Bits descending: the baseline on the left, the collapse on the right, as the paper draws it.
  std::stable_sort(pts.begin(), pts.end(), [](const json& a, const json& b) {
    return opt_number(a, "bits").value_or(-1) > opt_number(b, "bits").value_or(-1);
  });
  std::vector<std::string> labels;
  for (const json& p : pts) {
    const auto bits = opt_number(p, "bits");
    labels.push_back(bits ? fmt::format("{:g}", *bits) : std::string(kUndefined));
  }
  const double n = static_cast<double>(pts.size());
  const double panel_w = kWidth / 2 - 10;

  // Left panel: refusal and flip rates with the flip rate's 95% band.
  SvgPlot rates(panel_w, 340, kMarginLeft, 16, kMarginTop, kMarginBottom);
  rates.set_x(-0.5, n - 0.5);
  rates.set_y(0.0, 1.0);
  rates.y_axis(nice_ticks(0, 1, 5), percent_label(0.2), "rate");
  rates.x_categories(labels, 1, "KV bits");
  // The band is drawn per contiguous run of defined intervals (a null bound breaks it).
  Pts upper, lower;
  auto flush_band = [&] {
    if (upper.size() >= 2) {
      Pts poly = upper;
      poly.insert(poly.end(), lower.rbegin(), lower.rend());
      rates.polygon(poly, "band-flip");
    }
    upper.clear();
    lower.clear();
  };
  for (size_t i = 0; i < pts.size(); ++i) {
    const auto lo = opt_number(pts[i], "flip_ci_low"), hi = opt_number(pts[i], "flip_ci_high");
    if (!lo || !hi) {
      flush_band();
      continue;
    }
    const double x = rates.px(static_cast<double>(i));
    upper.emplace_back(x, rates.py(*hi));
    lower.emplace_back(x, rates.py(*lo));
  }
  flush_band();
  auto series = [&](SvgPlot& plot, std::string_view key, std::string_view cls,
                    std::string_view what, const std::function<std::string(double)>& fmt_value) {
    Pts run;
    for (size_t i = 0; i < pts.size(); ++i) {
      const auto v = opt_number(pts[i], key);
      if (!v) {
        plot.polyline(run, std::string(cls) + " series");
        run.clear();
        continue;
      }
      run.emplace_back(plot.px(static_cast<double>(i)), plot.py(*v));
    }
    plot.polyline(run, std::string(cls) + " series");
    for (size_t i = 0; i < pts.size(); ++i) {
      const auto v = opt_number(pts[i], key);
      if (!v) continue;
      plot.circle(plot.px(static_cast<double>(i)), plot.py(*v), 4, std::string(cls) + " dot",
                  fmt::format("{} bits: {} {}", labels[i], what, fmt_value(*v)));
    }
  };
  series(rates, "refusal_rate", "s-refusal", "refusal rate",
         [](double v) { return format_percent(v); });
  series(rates, "flip_rate", "s-flip", "flip rate", [](double v) { return format_percent(v); });
  std::vector<LegendItem> rate_legend = {{"refusal rate", "s-refusal series", LegendItem::Kind::kLine},
                                         {"flip rate", "s-flip series", LegendItem::Kind::kLine},
                                         {"flip 95% CI", "band-flip", LegendItem::Kind::kBox}};
  // The measured noise floor (flips from bf16 rounding alone) as a reference for the flip curve.
  const json* noise = opt_object(report, "noise_floor");
  if (const auto nf = noise ? opt_number(*noise, "flip_rate") : std::nullopt) {
    rates.line(rates.left(), rates.py(*nf), rates.right(), rates.py(*nf), "noise-line");
    rate_legend.push_back({"noise floor (" + opt_string(*noise, "scheme").value_or("control") + ")",
                           "noise-line", LegendItem::Kind::kDash});
  }
  rates.legend(rate_legend);

  // Right panel: perplexity ratio on a log axis (it spans decades once the output degenerates).
  SvgPlot ppl(panel_w, 340, kMarginLeft, 16, kMarginTop, kMarginBottom);
  ppl.set_x(-0.5, n - 0.5);
  double lo = 1.0, hi = 1.0;
  bool any_ppl = false;
  for (const json& p : pts) {
    if (const auto r = opt_number(p, "ppl_ratio"); r && *r > 0) {
      lo = std::min(lo, *r);
      hi = std::max(hi, *r);
      any_ppl = true;
    }
  }
  const std::vector<double> ticks = log_ticks(lo, hi);
  ppl.set_y(ticks.front(), ticks.back(), true);
  ppl.y_axis(ticks, log_tick_label, "perplexity ratio (log)");
  ppl.x_categories(labels, 1, "KV bits");
  if (any_ppl) {
    ppl.line(ppl.left(), ppl.py(1.0), ppl.right(), ppl.py(1.0), "ref");
    series(ppl, "ppl_ratio", "s-ppl", "perplexity ratio",
           [](double v) { return format_general(v); });
    ppl.legend({{"perplexity ratio", "s-ppl series", LegendItem::Kind::kLine},
                {"ratio 1 (16-bit)", "ref", LegendItem::Kind::kDash}});
  } else {
    ppl.text((ppl.left() + ppl.right()) / 2, (ppl.top() + ppl.bottom()) / 2,
             "perplexity not run", "note", "middle");
  }
  Figure f;
  f.ran = true;
  f.html = "<div class=\"panels\">" + rates.str("refusal and flip rate by KV bits") +
           ppl.str("perplexity ratio by KV bits") + "</div>";
  const std::string target = opt_string(report, "target").value_or(std::string(kUndefined));
  f.html += caption(fmt::format(
      "Refusal rate and conditional flip rate (baseline refused, quantized complied) as the "
      "target scheme <code>{}</code> loses bits; the shaded band is the flip rate's 95% interval. "
      "Right: perplexity ratio to the 16-bit model. Flips that start while perplexity is flat are "
      "the failure a perplexity check misses.",
      escape_html(target)));
  return f;
}

// ---------------------------------------------------------------- per-layer scan

Figure layer_plot(const json& report) {
  const json* scan = opt_array(report, "layer_scan");
  if (!scan) return {};
  std::vector<json> rows(scan->begin(), scan->end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const json& a, const json& b) { return layer_of(a) < layer_of(b); });
  std::set<int> critical;
  if (const json* c = opt_array(report, "critical_layers"))
    for (const json& e : *c) critical.insert(layer_of(e));
  const auto crit_flip = threshold(report, "critical_flip");

  double top = crit_flip.value_or(0.0);
  for (const json& r : rows)
    top = std::max({top, opt_number(r, "flip_rate").value_or(0), opt_number(r, "flip_ci_high").value_or(0)});
  top = rate_axis_top(top);

  const double n = static_cast<double>(rows.size());
  SvgPlot plot(kWidth, 340, kMarginLeft, kMarginRight, kMarginTop, kMarginBottom);
  plot.set_x(-0.5, n - 0.5);
  plot.set_y(0.0, top);
  const double step = nice_step(0, top, 5);
  plot.y_axis(nice_ticks(0, top, 5), percent_label(step), "flip rate");
  std::vector<std::string> labels;
  for (const json& r : rows) {
    const int l = layer_of(r);
    labels.push_back(l >= 0 ? std::to_string(l) : std::string(kUndefined));
  }
  // About 28 px per label keeps them apart at any layer count.
  const int stride = static_cast<int>(std::ceil(n / ((plot.right() - plot.left()) / 28.0)));
  plot.x_categories(labels, stride, "layer (only this layer's K and V quantized)");

  const double slot = (plot.right() - plot.left()) / std::max(n, 1.0);
  const double bar_w = std::max(slot * 0.7, 1.0);
  std::vector<int> undefined_layers;
  double last_label_end = -1e9, last_label_y = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& r = rows[i];
    const int l = layer_of(r);
    const double x = plot.px(static_cast<double>(i));
    const auto flip = opt_number(r, "flip_rate");
    if (!flip) {
      undefined_layers.push_back(l);
      continue;
    }
    const bool is_crit = critical.count(l) > 0;
    const auto flips = opt_number(r, "flips"), count = opt_number(r, "n");
    const std::string tip = fmt::format(
        "layer {}: flip rate {} ({} of {} baseline refusals){}", l,
        format_percent_ci(flip, opt_number(r, "flip_ci_low"), opt_number(r, "flip_ci_high")),
        format_fixed(flips, 0), format_fixed(count, 0), is_crit ? ", critical" : "");
    plot.rect(x - bar_w / 2, plot.py(*flip), bar_w, plot.py(0) - plot.py(*flip),
              is_crit ? "bar critical" : "bar", tip);
    const auto lo = opt_number(r, "flip_ci_low"), hi = opt_number(r, "flip_ci_high");
    if (lo && hi) plot.whisker(x, plot.py(*lo), plot.py(*hi), std::min(bar_w / 3, 5.0), "whisker");
    if (is_crit) {
      // Whole percents when the bars are narrow; a label that would touch the previous one goes
      // one line higher.
      const std::string label = slot < 44 ? fmt::format("{:.0f}%", 100 * *flip) : format_percent(flip);
      const double w = 6.8 * double(label.size());
      double y = plot.py(hi.value_or(*flip)) - 6;
      if (x - w / 2 < last_label_end + 6 && std::fabs(y - last_label_y) < 13) y = last_label_y - 13;
      plot.text(x, y, label, "value-label crit-label", "middle");
      last_label_end = x + w / 2;
      last_label_y = y;
    }
  }
  if (crit_flip) {
    plot.line(plot.left(), plot.py(*crit_flip), plot.right(), plot.py(*crit_flip), "threshold");
    plot.text(plot.right() - 4, plot.py(*crit_flip) - 5,
              "critical flip " + format_percent(crit_flip), "threshold-label", "end");
  }
  std::vector<LegendItem> legend = {{"layer", "bar", LegendItem::Kind::kBox},
                                    {"critical layer", "bar critical", LegendItem::Kind::kBox},
                                    {"95% CI", "whisker", LegendItem::Kind::kLine}};
  if (crit_flip) legend.push_back({"critical threshold", "threshold", LegendItem::Kind::kDash});
  plot.legend(legend);

  Figure f;
  f.ran = true;
  f.html = plot.str("flip rate per layer");
  std::vector<int> crit_list(critical.begin(), critical.end());
  crit_list.erase(std::remove(crit_list.begin(), crit_list.end(), -1), crit_list.end());
  std::string text = fmt::format(
      "Flip rate when one layer's K and V alone are quantized with the scan preset (every other "
      "layer 16-bit), with 95% intervals. Critical layers: {}.",
      crit_list.empty() ? std::string("none qualified") : join_ints(crit_list));
  if (!undefined_layers.empty())
    text += " Flip rate undefined (no baseline refusals) for layers " + join_ints(undefined_layers) + ".";
  f.html += caption(text);
  return f;
}

// ---------------------------------------------------------------- outlier channels

Figure channel_plot(const json& report) {
  const json* entries = opt_array(report, "outlier_channels");
  if (!entries) return {};
  Figure f;
  // Two panels per row when there are several layers: a 576-channel panel still has about one
  // pixel per channel at half width, and the page stays short enough to read in one pass.
  const bool two_columns = entries->size() > 1;
  const double panel_w = two_columns ? kWidth / 2 - 10 : kWidth;
  bool first_panel = true;
  std::string panels;
  for (const json& e : *entries) {
    const int l = layer_of(e);
    std::vector<double> mags;
    if (const json* m = opt_array(e, "channel_max"))
      for (const json& v : *m) mags.push_back(v.is_number() ? v.get<double>() : NAN);
    std::set<int> outliers;
    if (const json* c = opt_array(e, "channels"))
      for (const json& v : *c)
        if (v.is_number_integer()) outliers.insert(v.get<int>());
    const auto thr = opt_number(e, "threshold");
    if (mags.empty()) {
      panels += fmt::format("<p class=\"note\">Layer {}: channel magnitudes not recorded; outlier "
                            "channels: {}.</p>",
                            l, outliers.empty() ? std::string("none") : join_ints({outliers.begin(), outliers.end()}));
      f.ran = true;
      continue;
    }
    f.ran = true;
    double top = thr.value_or(0.0);
    for (double v : mags)
      if (std::isfinite(v)) top = std::max(top, v);
    top = nice_range(0.0, std::max(top, 1e-6), 5).second;
    const double n = static_cast<double>(mags.size());
    SvgPlot plot(panel_w, 250, kMarginLeft, kMarginRight, kMarginTop + 12, kMarginBottom);
    plot.set_x(-0.5, n - 0.5);
    plot.set_y(0.0, top);
    const double step = nice_step(0, top, 4);
    plot.y_axis(nice_ticks(0, top, 4), [step](double v) { return tick_label(v, step); }, "max |k|");
    plot.x_axis(nice_ticks(0, n - 1, two_columns ? 6 : 12), [](double v) { return fmt::format("{:g}", v); },
                "key channel (all heads, pre-RoPE)");
    // One path per class keeps a 576-channel plot small: a vertical stem per channel.
    std::string normal, outlier;
    for (size_t c = 0; c < mags.size(); ++c) {
      if (!std::isfinite(mags[c])) continue;
      std::string& d = outliers.count(static_cast<int>(c)) ? outlier : normal;
      d += fmt::format("M{} {}V{}", coord(plot.px(static_cast<double>(c))), coord(plot.py(0)),
                       coord(plot.py(mags[c])));
    }
    plot.path(normal, "stem");
    plot.path(outlier, "stem stem-outlier");
    std::vector<std::pair<double, int>> ranked;
    for (int c : outliers) {
      if (c < 0 || c >= static_cast<int>(mags.size()) || !std::isfinite(mags[c])) continue;
      plot.circle(plot.px(c), plot.py(mags[c]), 3.2, "outlier-dot",
                  fmt::format("layer {} channel {}: max |k| {}", l, c, format_general(mags[c])));
      ranked.emplace_back(mags[c], c);
    }
    if (thr) {
      plot.line(plot.left(), plot.py(*thr), plot.right(), plot.py(*thr), "threshold");
      plot.text(plot.right() - 4, plot.py(*thr) - 5, "outlier threshold " + format_general(thr),
                "threshold-label", "end");
    }
    // Name the largest outliers, skipping any that would collide with one already named.
    std::sort(ranked.rbegin(), ranked.rend());
    std::vector<double> named_x;
    for (const auto& [m, c] : ranked) {
      if (named_x.size() >= (two_columns ? 4u : 6u)) break;
      const double x = plot.px(c);
      if (std::any_of(named_x.begin(), named_x.end(), [x](double o) { return std::fabs(o - x) < 44; }))
        continue;
      named_x.push_back(x);
      plot.text(x, plot.py(m) - 8, fmt::format("ch {}", c), "value-label", "middle");
    }
    // Title on its own line above the legend row.
    plot.text(plot.left(), 16,
              fmt::format("Layer {}: {} outlier channels of {}", l, outliers.size(), mags.size()),
              "panel-title");
    std::vector<LegendItem> legend = {{"channel", "stem", LegendItem::Kind::kLine},
                                      {"outlier channel", "outlier-dot", LegendItem::Kind::kDot}};
    if (thr) legend.push_back({"threshold", "threshold", LegendItem::Kind::kDash});
    if (first_panel) plot.legend(legend);
    first_panel = false;
    panels += plot.str(fmt::format("key channel magnitudes, layer {}", l));
  }
  f.html += two_columns ? "<div class=\"grid2\">" + panels + "</div>" : panels;
  f.html += caption(
      "Largest absolute pre-RoPE key value per channel over the calibration prompts' prefill, per "
      "critical layer. Channels at or above the layer's threshold are the outliers (red).");
  return f;
}

// ---------------------------------------------------------------- channel ablation

namespace {

std::string ablation_class(std::string_view name) {
  if (name == "per-tensor") return "abl-tensor";
  if (name == "per-channel") return "abl-channel";
  if (name == "outliers-only") return "abl-outliers";
  if (name == "non-outliers-only") return "abl-rest";
  return "abl-random";
}

}  // namespace

Figure ablation_plot(const json& report) {
  const json* rows = opt_array(report, "ablation");
  if (!rows) return {};
  double top = 0;
  for (const json& r : *rows)
    top = std::max({top, opt_number(r, "flip_rate").value_or(0), opt_number(r, "flip_ci_high").value_or(0)});
  top = rate_axis_top(top);
  const double n = static_cast<double>(rows->size());
  SvgPlot plot(kWidth, 340, kMarginLeft, kMarginRight, kMarginTop, kMarginBottom + 18);
  plot.set_x(-0.5, n - 0.5);
  plot.set_y(0.0, top);
  const double step = nice_step(0, top, 5);
  plot.y_axis(nice_ticks(0, top, 5), percent_label(step), "flip rate");
  std::vector<std::string> labels;
  for (const json& r : *rows) labels.push_back(opt_string(r, "name").value_or(std::string(kUndefined)));
  plot.line(plot.left(), plot.bottom(), plot.right(), plot.bottom(), "axis");
  const double slot = (plot.right() - plot.left()) / std::max(n, 1.0);
  const double bar_w = std::min(slot * 0.6, 90.0);
  for (size_t i = 0; i < rows->size(); ++i) {
    const json& r = (*rows)[i];
    const double x = plot.px(static_cast<double>(i));
    const auto k = opt_number(r, "n_channels");
    plot.text(x, plot.bottom() + 19, labels[i], "tick", "middle");
    plot.text(x, plot.bottom() + 35, k ? fmt::format("{:g} channels", *k) : "channels undefined",
              "tick-sub", "middle");
    const auto flip = opt_number(r, "flip_rate");
    const auto lo = opt_number(r, "flip_ci_low"), hi = opt_number(r, "flip_ci_high");
    if (!flip) {
      plot.text(x, plot.py(0) - 8, std::string(kUndefined), "note", "middle");
      continue;
    }
    plot.rect(x - bar_w / 2, plot.py(*flip), bar_w, plot.py(0) - plot.py(*flip),
              ablation_class(labels[i]),
              fmt::format("{}: flip rate {}", labels[i], format_percent_ci(flip, lo, hi)));
    if (lo && hi) plot.whisker(x, plot.py(*lo), plot.py(*hi), 6, "whisker");
    plot.text(x + (lo && hi ? 10 : 0), plot.py(hi && lo ? (*lo + *hi) / 2 : *flip) - (lo && hi ? -4 : 6),
              format_percent(flip), "value-label", lo && hi ? "start" : "middle");
  }
  plot.text((plot.left() + plot.right()) / 2, plot.bottom() + 58,
            "channel set quantized (3-bit, K and V, top critical layer)", "axis-title", "middle");
  plot.legend({{"95% CI", "whisker", LegendItem::Kind::kLine}});
  Figure f;
  f.ran = true;
  f.html = plot.str("channel ablation flip rates");
  f.html += caption(
      "Flip rate when only the named channel set of the top critical layer is quantized, with a "
      "scale over that set alone (other channels 16-bit). Random sets have the outlier set's size.");
  return f;
}

// ---------------------------------------------------------------- PCR and failure mode

Figure pcr_plot(const json& report) {
  const auto calib = opt_number(report, "pcr_calibration");
  const auto held = opt_number(report, "pcr_heldout");
  const auto mode = opt_string(report, "failure_mode");
  // A report that did not diagnose holds these keys as null: nothing ran.
  const bool any_key = calib || held || mode;
  if (!any_key) return {};
  const auto low = threshold(report, "pcr_low"), high = threshold(report, "pcr_high");
  // PCR is not clipped: the axis widens to show values outside 0..1.
  double lo = 0.0, hi = 1.0;
  for (const auto& v : {calib, held})
    if (v) {
      lo = std::min(lo, *v);
      hi = std::max(hi, *v);
    }
  if (lo < 0.0 || hi > 1.0) std::tie(lo, hi) = nice_range(lo, hi, 10);
  SvgPlot plot(kWidth, 200, 150, kMarginRight, 40, 50);
  plot.set_x(lo, hi);
  plot.set_y(0.0, 2.0);
  const double y_top = plot.top(), y_bot = plot.bottom();
  if (low && high) {
    plot.rect(plot.px(lo), y_top, plot.px(*low) - plot.px(lo), y_bot - y_top, "zone zone-a");
    plot.rect(plot.px(*low), y_top, plot.px(*high) - plot.px(*low), y_bot - y_top, "zone zone-b");
    plot.rect(plot.px(*high), y_top, plot.px(hi) - plot.px(*high), y_bot - y_top, "zone zone-c");
    plot.text((plot.px(lo) + plot.px(*low)) / 2, y_top - 8, "outlier-as-safety", "zone-label", "middle");
    plot.text((plot.px(*low) + plot.px(*high)) / 2, y_top - 8, "mixed", "zone-label", "middle");
    plot.text((plot.px(*high) + plot.px(hi)) / 2, y_top - 8,
              "outlier-crushes-safety / multi-layer dilution", "zone-label", "middle");
    for (double t : {*low, *high}) plot.line(plot.px(t), y_top, plot.px(t), y_bot, "threshold");
  }
  plot.x_axis(nice_ticks(lo, hi, 10), [](double v) { return tick_label(v, 0.1); },
              "PCR = 1 \u2212 flip(per-channel) / flip(per-tensor)");
  auto marker = [&](std::optional<double> v, double row, std::string_view name) {
    const double y = plot.py(row);
    plot.text(plot.left() - 10, y + 4, name, "tick", "end");
    plot.line(plot.left(), y, plot.right(), y, "grid");
    if (!v) {
      plot.text(plot.left() + 8, y + 4, "undefined (per-tensor flip rate 0 or not measured)", "note");
      return;
    }
    plot.circle(plot.px(*v), y, 7, "pcr-dot", fmt::format("{}: {}", name, format_fixed(v, 3)));
    // Right of the dot, or left of it where the plot's right edge would cut the label.
    const bool room = plot.px(*v) + 12 + 6.8 * 5 <= plot.right();
    plot.text(plot.px(*v) + (room ? 12 : -12), y + 5, format_fixed(v, 2), "value-label", room ? "start" : "end");
  };
  marker(calib, 1.4, "calibration");
  marker(held, 0.6, "held-out");
  Figure f;
  f.ran = true;
  f.html = plot.str("PCR on calibration and held-out prompts");
  std::string text = "Failure mode: <b>" + escape_html(mode.value_or(std::string(kUndefined))) + "</b>";
  if (const json* p = opt_object(report, "prescription"))
    text += "; prescription: <b>" + escape_html(opt_string(*p, "name").value_or(std::string(kUndefined))) +
            "</b> <code>" + escape_html(opt_string(*p, "spec").value_or("")) + "</code>";
  else
    text += "; prescription: none";
  text += ". Per-channel reduction at the top critical layer on the calibration prompts and on "
          "the held-out prompts; the class should not change between them.";
  if (!(low && high)) text += " Mode thresholds not recorded in the report.";
  f.html += caption(text);
  return f;
}

// ---------------------------------------------------------------- geometry

Figure geometry_plot(const json& report) {
  const json* geo = opt_object(report, "geometry");
  const json* layers = geo ? opt_array(*geo, "layers") : nullptr;
  if (!layers) return {};
  std::vector<json> rows(layers->begin(), layers->end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const json& a, const json& b) { return layer_of(a) < layer_of(b); });
  double lo = 1.0, hi = 1.0;
  for (const json& r : rows)
    for (const char* key : {"vulnerability_ratio", "random_ratio"})
      if (const auto v = opt_number(r, key); v && *v > 0) {
        lo = std::min(lo, *v);
        hi = std::max(hi, *v);
      }
  const std::vector<double> ticks = log_ticks(lo, hi);
  const double n = static_cast<double>(rows.size());
  SvgPlot plot(kWidth, 340, kMarginLeft, kMarginRight, kMarginTop, kMarginBottom);
  plot.set_x(-0.5, n - 0.5);
  plot.set_y(ticks.front(), ticks.back(), true);
  plot.y_axis(ticks, log_tick_label, "ratio (log scale)");
  std::vector<std::string> labels;
  for (const json& r : rows) labels.push_back(std::to_string(layer_of(r)));
  const int stride = static_cast<int>(std::ceil(n / ((plot.right() - plot.left()) / 28.0)));
  plot.x_categories(labels, stride, "layer");
  const double slot = (plot.right() - plot.left()) / std::max(n, 1.0);
  const double bar_w = std::max(slot * 0.36, 1.0);
  const double base = plot.py(ticks.front());
  std::vector<int> undefined_layers;
  for (size_t i = 0; i < rows.size(); ++i) {
    const double x = plot.px(static_cast<double>(i));
    const int l = layer_of(rows[i]);
    const auto v = opt_number(rows[i], "vulnerability_ratio");
    const auto r = opt_number(rows[i], "random_ratio");
    if (v && *v > 0)
      plot.rect(x - bar_w, plot.py(*v), bar_w, base - plot.py(*v), "bar-vuln",
                fmt::format("layer {}: vulnerability ratio {}", l, format_general(v)));
    else
      undefined_layers.push_back(l);
    if (r && *r > 0)
      plot.rect(x, plot.py(*r), bar_w, base - plot.py(*r), "bar-random",
                fmt::format("layer {}: random-subspace ratio {}", l, format_general(r)));
  }
  plot.line(plot.left(), plot.py(1.0), plot.right(), plot.py(1.0), "ref");
  plot.legend({{"safety subspace", "bar-vuln", LegendItem::Kind::kBox},
               {"random subspace (control)", "bar-random", LegendItem::Kind::kBox},
               {"ratio 1", "ref", LegendItem::Kind::kDash}});
  Figure f;
  f.ran = true;
  f.html = plot.str("vulnerability ratio per layer");
  std::string text = fmt::format(
      "Vulnerability ratio: how much more of the target scheme's error lands in the safety "
      "subspace (top-{} directions of the harmful/harmless differences) than in the residual "
      "stream as a whole; the random subspace of the same dimension is the control (about 1).",
      format_fixed(opt_number(*geo, "subspace_k"), 0));
  if (!undefined_layers.empty())
    text += " Undefined for layers " + join_ints(undefined_layers) + ".";
  f.html += caption(text);
  return f;
}

}  // namespace kvaudit::report
