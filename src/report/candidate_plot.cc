// Recovery vs memory overhead of every candidate plan (SPEC.md §5 "Mitigation and
// verification"), with the target-recovery line, the chosen plan marked, and the full table.
#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "report/html_format.h"
#include "report/report_plots.h"
#include "report/svg_plot.h"

namespace kvaudit::report {

namespace {

using nlohmann::json;

struct Box {
  double x0, y0, x1, y1;
  bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

// Label width at the 12 px label font (about 6.8 px per character of these names).
double label_width(std::string_view s) { return 6.8 * static_cast<double>(s.size()); }

// Puts each label at the first of eight spots around its point that stays inside the plot and
// clear of the labels and points already placed; the first spot when none is free.
struct LabelPlacer {
  std::vector<Box> taken;
  Box area;

  // Returns the text's start x and baseline y, or nothing when no spot is free.
  // r: the marker's radius (labels start just outside it).
  std::optional<std::pair<double, double>> place(double px, double py, double r, std::string_view text) {
    const double w = label_width(text), h = 13;
    const double d = r + 5;
    const std::pair<double, double> offsets[] = {{d, 4},          {-d - w, 4},    {-w / 2, -d - 2},
                                                 {-w / 2, d + 11}, {d - 2, -d + 1}, {d - 2, d + 6},
                                                 {-d + 2 - w, -d + 1}, {-d + 2 - w, d + 6}};
    for (const auto& [dx, dy] : offsets) {
      const Box b{px + dx, py + dy - h + 3, px + dx + w, py + dy + 3};
      if (b.x0 < area.x0 || b.x1 > area.x1 || b.y0 < area.y0 || b.y1 > area.y1) continue;
      if (std::any_of(taken.begin(), taken.end(), [&](const Box& t) { return t.overlaps(b); }))
        continue;
      taken.push_back(b);
      return std::pair{b.x0, py + dy};
    }
    return std::nullopt;
  }
};

// "yes" / "no", or why there is no answer: too few baseline refusals for the test to reject.
std::string noise_cell(const json& c) {
  const auto within = opt_bool(c, "within_noise");
  return within ? format_yes_no(within) : "<span class=\"undefined\">undefined (too few refusals)</span>";
}

// The candidate's IFEval change against the baseline, when it was checked (it recovered).
std::string capability_cell(const json& c) {
  const auto d = opt_number(c, "ifeval_delta_prompt_strict");
  if (!d) return "not checked";
  const auto lost = opt_bool(c, "capability_lost");
  return fmt::format("{:+.1f} points ({}){}", 100 * *d, format_general(opt_number(c, "ifeval_mcnemar_p")),
                     lost && *lost ? " <b>lost</b>" : "");
}

// ppl_ran: perplexity was measured (--text); its columns say "not run" otherwise, not "undefined".
std::string table_html(const json& rows, const std::optional<std::string>& chosen, bool ppl_ran) {
  std::string s =
      "<table class=\"data\"><thead><tr><th>#</th><th>plan</th><th>policy</th><th>refusal</th>"
      "<th>flip rate</th><th>recovery (95% CI)</th><th>memory overhead</th>"
      "<th>bytes/token</th><th>ppl ratio</th><th>KL</th><th>screen shift</th><th>flips within noise floor</th>"
      "<th>IFEval &Delta; prompt strict (p)</th>"
      "</tr></thead><tbody>";
  const std::string not_run = "<span class=\"undefined\">not run</span>";
  size_t index = 0;
  for (const json& c : rows) {
    const auto name = opt_string(c, "name");
    const bool is_chosen = chosen && name && *name == *chosen;
    // The interval under the value: the cell stays narrow enough for the table to fit its card.
    const std::string recovery =
        format_percent(opt_number(c, "recovery")) +
        (opt_number(c, "recovery_ci_low") || opt_number(c, "recovery_ci_high")
             ? "<br><small>95% CI " + format_percent_range(opt_number(c, "recovery_ci_low"), opt_number(c, "recovery_ci_high")) +
                   "</small>"
             : std::string());
    s += fmt::format(
        "<tr{}><td>{}</td><td>{}{}</td><td><code>{}</code></td><td class=\"nw\">{}</td><td class=\"nw\">{}</td>"
        "<td class=\"nw\">{}</td><td class=\"nw\">{}</td><td class=\"nw\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td></tr>",
        is_chosen ? " class=\"chosen\"" : "", ++index, escape_html(name.value_or(std::string(kUndefined))),
        is_chosen ? " <span class=\"badge\">chosen</span>" : "",
        escape_html_breakable(opt_string(c, "policy").value_or(std::string(kUndefined))),
        format_percent(opt_number(c, "refusal_rate")), format_percent(opt_number(c, "flip_rate")), recovery,
        format_percent(opt_number(c, "memory_overhead")), format_count(opt_number(c, "bytes_per_token")),
        ppl_ran ? format_fixed(opt_number(c, "ppl_ratio"), 3) : not_run,
        ppl_ran ? format_general(opt_number(c, "kl")) : not_run, format_fixed(opt_number(c, "screen_shift"), 3),
        noise_cell(c), capability_cell(c));
  }
  return s + "</tbody></table>";
}

}  // namespace

Figure candidate_plot(const json& report) {
  const json* rows = opt_array(report, "candidates");
  if (!rows) return {};
  const auto chosen = opt_string(report, "chosen");
  const json* thresholds = opt_object(report, "thresholds");
  const auto target = thresholds ? opt_number(*thresholds, "target_recovery") : std::nullopt;

  double xlo = 0, xhi = 0, ylo = 0, yhi = 1;
  if (target) yhi = std::max(yhi, *target);
  std::vector<std::string> unplotted;
  // The axis holds every point; an interval widens it only to kCiReach beyond 0..100% (with few
  // baseline refusals recovery's interval reaches +-500% and would flatten the points): whiskers
  // are cut at the axis.
  constexpr double kCiReach = 0.5;
  for (const json& c : *rows) {
    const auto x = opt_number(c, "memory_overhead"), y = opt_number(c, "recovery");
    if (!x || !y) {
      unplotted.push_back(opt_string(c, "name").value_or(std::string(kUndefined)));
      continue;
    }
    xlo = std::min(xlo, *x);
    xhi = std::max(xhi, *x);
    ylo = std::min(ylo, *y);
    yhi = std::max(yhi, *y);
    for (const auto& v : {opt_number(c, "recovery_ci_low"), opt_number(c, "recovery_ci_high")})
      if (v) {
        ylo = std::min(ylo, std::max(*v, -kCiReach));
        yhi = std::max(yhi, std::min(*v, 1.0 + kCiReach));
      }
  }
  // Headroom on the right for labels of the costliest plan.
  std::tie(xlo, xhi) = nice_range(xlo, xhi + (xhi - xlo) * 0.08 + 1e-3, 8);
  // Headroom above the best plan for its label.
  std::tie(ylo, yhi) = nice_range(ylo, yhi + (yhi - ylo) * 0.1, 6);

  SvgPlot plot(1160, 420, 78, 24, 44, 56);
  plot.set_x(xlo, xhi);
  plot.set_y(ylo, yhi);
  const double xstep = nice_step(xlo, xhi, 8), ystep = nice_step(ylo, yhi, 6);
  auto pct = [](double step) {
    return [step](double v) { return tick_label(v * 100.0, step * 100.0) + "%"; };
  };
  plot.y_axis(nice_ticks(ylo, yhi, 6), pct(ystep), "recovery of lost refusals");
  plot.x_axis(nice_ticks(xlo, xhi, 8), pct(xstep), "memory overhead vs the target scheme (real bytes/token)",
              true);
  LabelPlacer placer;
  placer.area = {plot.left(), plot.top(), plot.right(), plot.bottom()};
  if (target) {
    const double y = plot.py(*target);
    plot.line(plot.left(), y, plot.right(), y, "threshold");
    const std::string label = "target recovery " + format_percent(target);
    // At the left end: cheap plans sit there, usually below the target, so the label is clear.
    plot.text(plot.left() + 6, y - 5, label, "threshold-label", "start");
    placer.taken.push_back({plot.left() + 6, y - 17, plot.left() + 6 + label_width(label), y});
  }
  if (xlo < 0) plot.line(plot.px(0), plot.top(), plot.px(0), plot.bottom(), "ref");
  // Points first (they reserve space), then whiskers and labels.
  struct Point {
    double x, y;
    std::string name;
    const json* row;
  };
  std::vector<Point> points;
  for (const json& c : *rows) {
    const auto x = opt_number(c, "memory_overhead"), y = opt_number(c, "recovery");
    if (!x || !y) continue;
    points.push_back({plot.px(*x), plot.py(*y), opt_string(c, "name").value_or(std::string(kUndefined)), &c});
    const double r = chosen && points.back().name == *chosen ? 12 : 7;  // the ring is larger
    placer.taken.push_back({points.back().x - r, points.back().y - r, points.back().x + r, points.back().y + r});
  }
  for (const Point& p : points) {
    const auto lo = opt_number(*p.row, "recovery_ci_low"), hi = opt_number(*p.row, "recovery_ci_high");
    if (lo && hi) plot.whisker(p.x, plot.py(std::max(*lo, ylo)), plot.py(std::min(*hi, yhi)), 4, "whisker");
  }
  for (const Point& p : points) {
    const bool is_chosen = chosen && p.name == *chosen;
    const auto within = opt_bool(*p.row, "within_noise");
    const std::string cls = !within ? "cand cand-undef" : *within ? "cand" : "cand cand-noisy";
    if (is_chosen) plot.circle(p.x, p.y, 11, "chosen-ring");
    plot.circle(p.x, p.y, 5.5, cls,
                fmt::format("{}: recovery {}, memory overhead {}, flips within noise floor: {}", p.name,
                            format_percent_ci(opt_number(*p.row, "recovery"),
                                              opt_number(*p.row, "recovery_ci_low"),
                                              opt_number(*p.row, "recovery_ci_high")),
                            format_percent(opt_number(*p.row, "memory_overhead")),
                            format_yes_no(within)));
    // The name where it fits; else the plan's row number in the table below; else no label (the
    // point's tooltip and the table still name it): labels never overlap.
    const size_t row_number = size_t(p.row - &(*rows)[0]) + 1;
    const std::string label = is_chosen ? p.name + " (chosen)" : p.name;
    const std::string label_cls = is_chosen ? "value-label chosen-label" : "value-label";
    if (const auto at = placer.place(p.x, p.y, is_chosen ? 11.0 : 5.5, label))
      plot.text(at->first, at->second, label, label_cls);
    else if (const auto at = placer.place(p.x, p.y, is_chosen ? 11.0 : 5.5, fmt::format("#{}", row_number)))
      plot.text(at->first, at->second, fmt::format("#{}", row_number), label_cls);
  }
  std::vector<LegendItem> legend = {{"flips within noise floor", "cand", LegendItem::Kind::kDot},
                                    {"flips above noise floor", "cand cand-noisy", LegendItem::Kind::kDot}};
  if (std::any_of(points.begin(), points.end(), [](const Point& p) { return !opt_bool(*p.row, "within_noise"); }))
    legend.push_back({"noise test undefined", "cand cand-undef", LegendItem::Kind::kDot});
  legend.push_back({"chosen plan", "chosen-ring", LegendItem::Kind::kDot});
  legend.push_back({"95% CI", "whisker", LegendItem::Kind::kLine});
  plot.legend(legend);

  Figure f;
  f.ran = true;
  f.html = plot.str("recovery versus memory overhead of each candidate plan");
  // diagnose lists the plans unverified: only their memory is known.
  const bool unverified = std::all_of(rows->begin(), rows->end(), [](const json& c) {
    return c.is_object() && c.contains("verified") && c["verified"] == false;
  });
  std::string text =
      "Each candidate plan verified on the held-out prompts: recovery = (refusal<sub>plan</sub> "
      "\u2212 refusal<sub>target</sub>) / (refusal<sub>baseline</sub> \u2212 refusal<sub>target</sub>)"
      " with its 95% interval, against real bytes per token relative to the target scheme. ";
  if (unverified)
    text = "Not verified: diagnose lists the plans an audit would verify, with their real bytes per token relative "
           "to the target scheme; <code>kvaudit audit</code> measures their recovery, flips and perplexity.";
  else
    text += chosen ? "Chosen: <b>" + escape_html(*chosen) + "</b> (the cheapest plan meeting the "
                     "recovery target with flips within the noise floor)."
                   : std::string("No plan met the recovery target within the noise floor.");
  if (!unplotted.empty() && !unverified) {
    std::string names;
    for (const auto& nm : unplotted) names += (names.empty() ? "" : ", ") + escape_html(nm);
    text += " Not plotted (recovery or overhead undefined): " + names + ".";
  }
  f.html += "<figcaption>" + text + "</figcaption>";
  // Perplexity ran when the config names a --text (or, in a report without one, a candidate has it).
  const json* config = opt_object(report, "config");
  const auto text_file = config ? opt_string(*config, "text") : std::nullopt;
  const bool ppl_ran = (text_file && !text_file->empty()) ||
                       std::any_of(rows->begin(), rows->end(), [](const json& c) { return opt_number(c, "ppl_ratio").has_value(); });
  f.html += table_html(*rows, chosen, ppl_ran);
  return f;
}

}  // namespace kvaudit::report
