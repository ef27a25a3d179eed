#include "report/html_report.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <unistd.h>

#include <gtest/gtest.h>

#include "report_fixture.h"

namespace kvaudit::report {
namespace {

using nlohmann::json;
using testing::count_of;
using testing::element_by_id;

const std::vector<std::string> kPlotIds = {"plot-phase",    "plot-layers", "plot-channels",
                                           "plot-ablation", "plot-pcr",    "plot-geometry",
                                           "plot-candidates"};

TEST(HtmlReport, FullFixtureDrawsEveryPlot) {
  const std::string html =
      render_report_html(testing::load_report_fixture(), testing::load_samples_fixture());
  for (const auto& id : kPlotIds) {
    SCOPED_TRACE(id);
    const std::string fig = element_by_id(html, id, "figure");
    ASSERT_FALSE(fig.empty());
    EXPECT_NE(fig.find("data-state=\"ok\""), std::string::npos);
    EXPECT_NE(fig.find("<svg"), std::string::npos);
    EXPECT_EQ(fig.find("not run"), std::string::npos);
  }
  const std::string table = element_by_id(html, "sample-table", "div");
  EXPECT_NE(html.find("id=\"sample-table\" data-state=\"ok\""), std::string::npos);
  EXPECT_EQ(count_of(html, "<tr data-scheme="), 20u);
  // Offline: nothing is loaded from anywhere.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find(" src=\""), std::string::npos);  // the fixture's attack text holds src=x
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
}

TEST(HtmlReport, FixtureValuesAreFormatted) {
  const std::string html =
      render_report_html(testing::load_report_fixture(), testing::load_samples_fixture());
  // Target flip rate with its interval, McNemar p, the finding and the chosen plan in the header.
  EXPECT_NE(html.find("52.9% (95% CI 45.5\u201360.2%)"), std::string::npos);
  EXPECT_NE(html.find("91 / 1.20e-19 / yes"), std::string::npos);
  EXPECT_NE(html.find("Chosen plan: <b>16-bit top-3</b>"), std::string::npos);
  EXPECT_NE(html.find("recovery 91.0% (95% CI 83.0\u201396.0%), memory overhead 43.3%"),
            std::string::npos);
  // The settings are null in the fixture: not expressible, with the reason.
  EXPECT_NE(html.find("vLLM: <span class=\"undefined\">not expressible</span>"), std::string::npos);
  EXPECT_NE(html.find("Why not: vLLM&#39;s --kv-cache-dtype"), std::string::npos);
  // The bf16 noise floor (1.16%) is drawn on the phase plot and named in its legend.
  const std::string phase = element_by_id(html, "plot-phase", "figure");
  EXPECT_EQ(count_of(phase, "class=\"noise-line\""), 2u);  // the line + its legend swatch
  EXPECT_NE(phase.find(">noise floor (bf16)</text>"), std::string::npos);
  // Four critical layers highlighted out of 30 bars; 4 channel panels of 29 outliers each.
  const std::string layers = element_by_id(html, "plot-layers", "figure");
  EXPECT_EQ(count_of(layers, "class=\"bar critical\""), 4u + 1u);  // + the legend swatch
  EXPECT_EQ(count_of(layers, "class=\"bar\""), 26u + 1u);  // 26 layers + the legend swatch
  const std::string channels = element_by_id(html, "plot-channels", "figure");
  EXPECT_EQ(count_of(channels, "<svg"), 4u);
  EXPECT_EQ(count_of(channels, "class=\"outlier-dot\""), 4u * 29u + 1u);  // + the legend dot
  // Layer 0's vulnerability ratio is null: said so, not drawn as 0.
  EXPECT_NE(element_by_id(html, "plot-geometry", "figure").find("Undefined for layers 0."),
            std::string::npos);
  // The chosen plan is ringed once and badged in the table.
  const std::string cands = element_by_id(html, "plot-candidates", "figure");
  EXPECT_EQ(count_of(cands, "<circle class=\"chosen-ring\""), 2u);  // the mark + legend swatch
  EXPECT_NE(cands.find("16-bit top-3 (chosen)"), std::string::npos);
  EXPECT_EQ(count_of(cands, "<tr class=\"chosen\">"), 1u);
  EXPECT_NE(cands.find("<td class=\"nw\">16,718</td>"), std::string::npos);  // 16-bit top-2
  // Stage times and their sum (3396.4 s).
  EXPECT_NE(html.find("<tr><td>layer_scan</td><td>6 min 51 s</td></tr>"), std::string::npos);
  EXPECT_NE(html.find("<b>total</b></td><td><b>56 min 36 s</b>"), std::string::npos);
  EXPECT_NE(html.find("(llama, 135M parameters, weights sha256 <code>5f8c0c5b2a3d9e4f\u2026</code>)"),
            std::string::npos);
}

TEST(HtmlReport, ThresholdLinesComeFromTheReport) {
  json r = testing::load_report_fixture();
  r["thresholds"] = {{"pcr_low", 0.25}, {"pcr_high", 0.8}, {"target_recovery", 0.85},
                     {"critical_flip", 0.2}};
  std::string html = render_report_html(r, {});
  EXPECT_NE(html.find("target recovery 85.0%"), std::string::npos);
  EXPECT_NE(html.find("critical flip 20.0%"), std::string::npos);
  EXPECT_EQ(html.find("target recovery 90.0%"), std::string::npos);
  // Without thresholds no rule line is drawn, and the report says they were not recorded.
  r.erase("thresholds");
  html = render_report_html(r, {});
  EXPECT_EQ(html.find("target recovery"), std::string::npos);
  EXPECT_EQ(html.find("critical flip "), std::string::npos);
  EXPECT_EQ(element_by_id(html, "plot-pcr", "figure").find("class=\"zone"), std::string::npos);
  EXPECT_NE(html.find("Mode thresholds not recorded"), std::string::npos);
  EXPECT_NE(html.find("Thresholds: not recorded."), std::string::npos);
}

TEST(HtmlReport, EmptyReportSaysNotRunEverywhere) {
  for (const json& r : {json::object(), json(nullptr), json::array()}) {
    const std::string html = render_report_html(r, {});
    for (const auto& id : kPlotIds) {
      SCOPED_TRACE(id);
      const std::string fig = element_by_id(html, id, "figure");
      ASSERT_FALSE(fig.empty());
      EXPECT_NE(fig.find("data-state=\"not-run\""), std::string::npos);
      EXPECT_NE(fig.find("<p class=\"not-run\">not run</p>"), std::string::npos);
      EXPECT_EQ(fig.find("<svg"), std::string::npos);
    }
    EXPECT_NE(html.find("id=\"sample-table\" data-state=\"not-run\"><p class=\"not-run\">not run"),
              std::string::npos);
    EXPECT_NE(html.find("Chosen plan: not run."), std::string::npos);
    EXPECT_NE(html.find("Model not recorded &middot; target scheme undefined</p>"), std::string::npos);
    EXPECT_NE(html.find("Timing: not run."), std::string::npos);
    EXPECT_EQ(html.find("0.0%"), std::string::npos);
  }
}

TEST(HtmlReport, NullMetricsReadUndefinedNeverZero) {
  json r = json::parse(R"({
    "baseline": {"refusal_rate": null, "n": null},
    "target_metrics": {"refusal_rate": null, "flip_rate": null, "flip_ci_low": null,
                       "flip_ci_high": null, "flips": null, "mcnemar_p": null, "significant": null},
    "pcr_calibration": null, "pcr_heldout": null, "failure_mode": "none",
    "layer_scan": [{"layer": 0, "flip_rate": null, "flip_ci_low": null, "flip_ci_high": null,
                    "flips": 0, "n": 0},
                   {"layer": 1, "flip_rate": 0.0, "flip_ci_low": 0.0, "flip_ci_high": 0.2,
                    "flips": 0, "n": 15}],
    "candidates": [{"name": "a", "recovery": null, "memory_overhead": 0.1},
                   {"name": "b", "recovery": 0.95, "memory_overhead": 0.2, "within_noise": true}],
    "chosen": null, "thresholds": {"target_recovery": 0.9}, "policy": "fp16",
    "settings": {"vllm": "--kv-cache-dtype auto", "llama_cpp": "-ctk f16 -ctv f16", "why_not": ""}
  })");
  const std::string html = render_report_html(r, {});
  EXPECT_NE(html.find("<div class=\"v\">undefined <small>n = undefined</small></div>"),
            std::string::npos);
  EXPECT_NE(html.find("undefined / undefined / undefined"), std::string::npos);
  EXPECT_NE(html.find("undefined (per-tensor flip rate 0 or not measured)"), std::string::npos);
  EXPECT_NE(html.find("Failure mode: <b>none</b>"), std::string::npos);
  EXPECT_NE(html.find("Flip rate undefined (no baseline refusals) for layers 0."), std::string::npos);
  // Layer 1's measured 0 is a real 0 and is drawn as one bar (plus the legend swatch).
  EXPECT_EQ(count_of(element_by_id(html, "plot-layers", "figure"), "class=\"bar\""), 2u);
  EXPECT_NE(html.find("Not plotted (recovery or overhead undefined): a."), std::string::npos);
  EXPECT_NE(html.find("Chosen plan: <b>none</b>"), std::string::npos);
  EXPECT_NE(html.find("policy.json keeps the KV cache in 16 bits."), std::string::npos);
  EXPECT_EQ(html.find("Why not:"), std::string::npos);  // nothing to say: both settings exist
  EXPECT_EQ(html.find("the target as it is"), std::string::npos);  // settings without "policy": "target"
  EXPECT_NE(html.find("No plan met the recovery target"), std::string::npos);
}

TEST(HtmlReport, CrowdedCandidatesNeverOverlapAndUnmeasuredReadsNotRun) {
  // Eight plans at the same point: one name fits, the others fall back to their row number or go
  // unlabelled; no two labels start at the same place. No --text: ppl and KL were not run.
  json r = json::parse(R"({"config": {"text": ""}, "thresholds": {"target_recovery": 0.9}, "chosen": null})");
  r["candidates"] = json::array();
  for (int i = 0; i < 8; ++i)
    r["candidates"].push_back({{"name", "plan number " + std::to_string(i)}, {"recovery", 0.0},
                               {"recovery_ci_low", -4.0}, {"recovery_ci_high", 5.0}, {"memory_overhead", 0.1},
                               {"within_noise", nullptr}, {"ppl_ratio", nullptr}});
  const std::string fig = element_by_id(render_report_html(r, {}), "plot-candidates", "figure");
  std::set<std::string> at;
  for (size_t p = fig.find("<text"); p != std::string::npos; p = fig.find("<text", p + 1)) {
    const size_t end = fig.find('>', p);
    const std::string tag = fig.substr(p, end - p);
    if (tag.find("value-label") == std::string::npos) continue;
    const size_t x = tag.find(" x=\""), y = tag.find(" y=\"");
    EXPECT_TRUE(at.insert(tag.substr(x, tag.find('"', x + 4) - x) + tag.substr(y, tag.find('"', y + 4) - y)).second)
        << "two labels at one place: " << tag;
  }
  EXPECT_GE(at.size(), 2u);
  EXPECT_NE(fig.find(">#"), std::string::npos);  // a row number where the name did not fit
  // The axis stays near 0..100%: the +-500% interval is cut at it, not stretched to.
  EXPECT_EQ(fig.find(">500%<"), std::string::npos);
  EXPECT_NE(fig.find("not run"), std::string::npos);
  EXPECT_NE(fig.find("undefined (too few refusals)"), std::string::npos);
  EXPECT_NE(fig.find("noise test undefined"), std::string::npos);
}

TEST(HtmlReport, WhyNoPlanWasChosen) {
  const auto banner = [](const std::string& candidates) {
    const json r = json::parse(R"({"chosen": null, "candidates": )" + candidates + "}");
    return element_by_id(render_report_html(r, {}), "plan", "div");
  };
  EXPECT_NE(banner("[]").find("no candidate was made"), std::string::npos);
  EXPECT_NE(banner(R"([{"name": "a", "recovery": null}])").find("recovery is undefined for every candidate"),
            std::string::npos);
  EXPECT_NE(banner(R"([{"name": "a", "recovery": 1.0, "within_noise": null}])").find("too few baseline refusals"),
            std::string::npos);
  EXPECT_NE(banner(R"([{"name": "a", "recovery": 0.2, "within_noise": true}])").find("no candidate met the recovery target"),
            std::string::npos);
}

TEST(HtmlReport, CapabilitySectionAndTheKeptTarget) {
  const json r = json::parse(R"({
    "target": "int8:token:asym", "chosen": null, "candidates": [],
    "settings": {"vllm": null, "llama_cpp": "q8_0", "why_not": null},
    "capability": {"bench": "ifeval", "prompts": 4, "max_new_tokens": 16, "alpha": 0.05, "rows": [
      {"scheme": "fp16", "ifeval_prompt_strict": 0.5, "ifeval_prompt_loose": 0.5, "ifeval_inst_strict": 0.6,
       "ifeval_inst_loose": 0.6, "delta_prompt_strict": 0.0, "flips": 0, "reverse_flips": 0, "mcnemar_p": 1.0, "lost": false},
      {"scheme": "int8:token:asym", "ifeval_prompt_strict": 0.25, "ifeval_prompt_loose": null, "ifeval_inst_strict": 0.4,
       "ifeval_inst_loose": 0.4, "delta_prompt_strict": -0.25, "flips": 1, "reverse_flips": 0, "mcnemar_p": 1.0, "lost": false}]}
  })");
  const std::string html = render_report_html(r, {});
  EXPECT_NE(html.find("Chosen plan: <b>the target as it is</b> <code>int8:token:asym</code>"), std::string::npos);
  const std::string cap = element_by_id(html, "capability", "h2");
  EXPECT_FALSE(cap.empty());
  EXPECT_NE(html.find("4 IFEval prompts"), std::string::npos);
  EXPECT_NE(html.find("p &lt; 0.05.</p>"), std::string::npos);
  EXPECT_NE(html.find("-25.0 points"), std::string::npos);
  EXPECT_NE(html.find("<td>1 / 0</td>"), std::string::npos);
  EXPECT_EQ(html.find("<td>0.0%</td><td>0.0%</td>"), std::string::npos);  // a null accuracy is undefined, not 0
}

TEST(HtmlReport, WrongTypesDegradeWithoutThrowing) {
  // A report from an older or damaged run: every field of the wrong type or shape.
  const json r = json::parse(R"({
    "model": "x", "target": 3, "finding": ["a"], "baseline": [], "target_metrics": "x",
    "phase_transition": [null, 1, {}, {"bits": "16", "refusal_rate": "0.5", "ppl_ratio": -1}],
    "layer_scan": [1, "x", null, {"layer": 2.7, "flip_rate": 1e308, "flip_ci_low": -1}],
    "critical_layers": {"layer": 1},
    "outlier_channels": [null, {"layer": 0, "channel_max": "abc", "channels": [1]},
                         {"layer": 1, "channel_max": [null, "x", 1.0], "channels": [-5, 99999999999, 2]}],
    "ablation": [{}, null, {"name": 7, "flip_rate": 0.2, "flip_ci_low": 0.3, "flip_ci_high": 0.1}],
    "pcr_calibration": "0.5", "pcr_heldout": 1e9, "failure_mode": 4, "prescription": "p",
    "geometry": {"layers": [null, {"layer": 1, "vulnerability_ratio": 0, "random_ratio": -2}]},
    "noise_floor": 1, "screen": {"auroc": "high"},
    "candidates": [null, {"name": null, "recovery": 0.5, "memory_overhead": -3}],
    "chosen": 1, "settings": "s", "thresholds": [0.3], "timing": {"a": "x", "b": null}
  })");
  const std::vector<json> samples = {json(nullptr), json::array(), {{"id", 5}, {"refused", "yes"}}};
  std::string html;
  ASSERT_NO_THROW(html = render_report_html(r, samples));
  for (const auto& id : kPlotIds) EXPECT_NE(html.find("id=\"" + id + "\""), std::string::npos) << id;
  EXPECT_EQ(count_of(html, "<tr data-scheme="), 3u);
  EXPECT_NE(html.find("<td class=\"nw\">5</td>"), std::string::npos);  // a numeric sample id
}

TEST(HtmlReport, AdversarialTextStaysInert) {
  const std::string attack = "</script><img src=x onerror=alert(1)><!--";
  json r = testing::load_report_fixture();
  r["finding"] = attack;
  r["chosen"] = attack;
  r["candidates"][0]["name"] = attack;
  const std::vector<json> samples = {
      {{"id", attack}, {"bench", attack}, {"scheme", "x\" onmouseover=\"alert(2)"},
       {"prompt", attack}, {"response", attack + "<svg onload=alert(3)>"}, {"refused", false},
       {"flip", true}}};
  const std::string html = render_report_html(r, samples);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<svg onload"), std::string::npos);
  EXPECT_EQ(html.find("onmouseover=\"alert"), std::string::npos);
  EXPECT_EQ(html.find("<!--"), std::string::npos);
  // Every "</script>" closes one of the page's three script elements.
  EXPECT_EQ(count_of(html, "</script>"), 3u);
  EXPECT_EQ(count_of(html, "<script"), 3u);
  EXPECT_NE(html.find("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&lt;!--"), std::string::npos);
  EXPECT_NE(html.find("data-scheme=\"x&quot; onmouseover=&quot;alert(2)\""), std::string::npos);
  EXPECT_NE(html.find("<option value=\"x&quot; onmouseover=&quot;alert(2)\">"), std::string::npos);
  // The embedded report JSON still parses back to the same report.
  const std::string open = "<script type=\"application/json\" id=\"report-data\">";
  const size_t a = html.find(open) + open.size();
  EXPECT_EQ(json::parse(html.substr(a, html.find("</script>", a) - a)), r);
}

TEST(HtmlReport, WritesTheFileAtomically) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kvaudit_report_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "report.html").string();
  const json r = testing::load_report_fixture();
  write_report_html(path, r, {});
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), render_report_html(r, {}));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);  // no temp left
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvaudit::report
