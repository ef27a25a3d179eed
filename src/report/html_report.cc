#include "report/html_report.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "io/atomic_file.h"
#include "report/html_assets.h"
#include "report/html_format.h"
#include "report/report_plots.h"
#include "report/sample_table.h"

namespace kvaudit::report {

namespace {

using nlohmann::json;

const std::string kNotRun = "<p class=\"not-run\">not run</p>";

std::string or_undefined(const std::optional<std::string>& s) {
  return escape_html(s.value_or(std::string(kUndefined)));
}

std::string format_params(std::optional<double> p) {
  if (!p) return std::string(kUndefined);
  if (*p >= 1e9) return fmt::format("{:.2f}B parameters", *p / 1e9);
  if (*p >= 1e6) return fmt::format("{:.0f}M parameters", *p / 1e6);
  return fmt::format("{:.0f} parameters", *p);
}

std::string card(std::string_view key, const std::string& value) {
  return fmt::format("<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>",
                     key, value);
}

// Title, model, finding, chosen plan and the serving settings.
std::string header_html(const json& r) {
  std::string h = "<header><h1>kvaudit report</h1>";
  // Only what was recorded: a missing model field is left out rather than printed "undefined".
  std::string meta;
  if (const json* m = opt_object(r, "model")) {
    meta = "Model <code>" + or_undefined(opt_string(*m, "path")) + "</code>";
    std::vector<std::string> details;
    if (const auto arch = opt_string(*m, "arch")) details.push_back(escape_html(*arch));
    if (const auto params = opt_number(*m, "params")) details.push_back(format_params(params));
    if (auto sha = opt_string(*m, "sha256")) {
      if (sha->size() > 16) *sha = sha->substr(0, 16) + "\u2026";
      details.push_back("weights sha256 <code>" + escape_html(*sha) + "</code>");
    }
    if (!details.empty()) {
      meta += " (";
      for (size_t i = 0; i < details.size(); ++i) meta += (i ? ", " : "") + details[i];
      meta += ")";
    }
  } else {
    meta = "Model not recorded";
  }
  meta += " &middot; target scheme " +
          (opt_string(r, "target") ? "<code>" + escape_html(*opt_string(r, "target")) + "</code>"
                                   : std::string(kUndefined));
  if (const auto v = opt_string(r, "kvaudit_version")) meta += " &middot; kvaudit " + escape_html(*v);
  h += "<p class=\"meta\">" + meta + "</p>";
  const auto finding = opt_string(r, "finding");
  h += "<div class=\"finding\" id=\"finding\">" +
       (finding ? escape_html(*finding) : std::string("No finding recorded (audit not run).")) + "</div>";

  h += "<div class=\"plan\" id=\"plan\">";
  const auto chosen = opt_string(r, "chosen");
  if (chosen) {
    const json* cand = nullptr;
    if (const json* list = opt_array(r, "candidates"))
      for (const json& c : *list)
        if (opt_string(c, "name") == chosen) cand = &c;
    h += "<p>Chosen plan: <b>" + escape_html(*chosen) + "</b>";
    if (cand)
      h += fmt::format(" <code>{}</code>: recovery {}, memory overhead {}",
                       or_undefined(opt_string(*cand, "policy")),
                       format_percent_ci(opt_number(*cand, "recovery"), opt_number(*cand, "recovery_ci_low"),
                                         opt_number(*cand, "recovery_ci_high")),
                       format_percent(opt_number(*cand, "memory_overhead")));
    h += "</p>";
  } else if (opt_string(r, "policy") ? *opt_string(r, "policy") == "target"
                                      : opt_object(r, "settings") != nullptr) {  // the target kept (older reports: settings alone)
    h += "<p>Chosen plan: <b>the target as it is</b> <code>" + escape_html(or_undefined(opt_string(r, "target"))) +
         "</code>: it flips no more refusals than the noise floor (policy.json holds it).</p>";
  } else if (const json* list = r.is_object() && r.contains("candidates") && r["candidates"].is_array() ? &r["candidates"]
                                                                                                   : nullptr) {
    // Why none: nothing generated, nothing to recover, a noise test without power, or none met it.
    const auto all_null = [&](const char* key) {
      return std::all_of(list->begin(), list->end(), [&](const json& c) { return !c.is_object() || !c.contains(key) || c[key].is_null(); });
    };
    std::string why;
    const bool unverified = !list->empty() && std::all_of(list->begin(), list->end(), [](const json& c) {
      return c.is_object() && c.contains("verified") && c["verified"] == false;
    });
    if (unverified)
      why = "diagnose verifies no candidate; the candidates below are what an audit would verify";
    else if (list->empty())
      why = "no candidate was made (the target was not diagnosed: its flips are not significant)";
    else if (all_null("recovery"))
      why = "recovery is undefined for every candidate (the baseline refuses none of the held-out prompts)";
    else if (all_null("within_noise"))
      why = "too few baseline refusals for the test against the noise floor to reject anything (see the finding)";
    else
      why = "no candidate met the recovery target with flips within the noise floor (see the candidates below for "
            "the best)";
    h += "<p>Chosen plan: <b>none</b>: " + why + ".";
    if (opt_string(r, "policy") == "fp16") h += " policy.json keeps the KV cache in 16 bits.";
    h += "</p>";
  } else {
    h += "<p>Chosen plan: not run.</p>";
  }
  if (const json* s = opt_object(r, "settings")) {
    auto setting = [&](std::string_view key) {
      const auto v = opt_string(*s, key);
      return v ? "<code>" + escape_html(*v) + "</code>" : std::string("<span class=\"undefined\">not expressible</span>");
    };
    h += "<p>vLLM: " + setting("vllm") + " &middot; llama.cpp: " + setting("llama_cpp") + "</p>";
    if (const auto why = opt_string(*s, "why_not"); why && !why->empty()) h += "<p>Why not: " + escape_html(*why) + "</p>";
  } else {
    h += "<p>Serving settings: not run.</p>";
  }
  h += "</div>";
  h += "<nav><a href=\"#summary\">summary</a><a href=\"#plot-phase\">phase transition</a>"
       "<a href=\"#plot-layers\">layers</a><a href=\"#plot-channels\">channels</a>"
       "<a href=\"#plot-ablation\">ablation</a><a href=\"#plot-pcr\">PCR</a>"
       "<a href=\"#plot-geometry\">geometry</a><a href=\"#plot-candidates\">candidates</a>"
       "<a href=\"#capability\">capability</a>"
       "<a href=\"#sample-table\">samples</a><a href=\"#timing\">timing</a></nav>";
  return h + "</header>";
}

// Baseline vs target, the noise floor and the screen's measured predictive power.
std::string summary_html(const json& r) {
  const json empty = json::object();
  const json* b = opt_object(r, "baseline");
  const json* t = opt_object(r, "target_metrics");
  const json* nf = opt_object(r, "noise_floor");
  const json* sc = opt_object(r, "screen");
  std::string h = "<section><h2 id=\"summary\">Target vs baseline</h2>";
  if (!b && !t && !nf && !sc) return h + kNotRun + "</section>";
  const json& base = b ? *b : empty;
  const json& tm = t ? *t : empty;
  const json& noise = nf ? *nf : empty;
  const json& screen = sc ? *sc : empty;
  h += "<div class=\"cards\">";
  h += card("baseline refusal rate (16-bit)",
            format_percent(opt_number(base, "refusal_rate")) +
                fmt::format(" <small>n = {}</small>", format_fixed(opt_number(base, "n"), 0)));
  h += card("target refusal rate", format_percent(opt_number(tm, "refusal_rate")));
  h += card("target flip rate (95% CI)",
            format_percent_ci(opt_number(tm, "flip_rate"), opt_number(tm, "flip_ci_low"),
                              opt_number(tm, "flip_ci_high")));
  h += card("flips / McNemar p / significant",
            fmt::format("{} / {} / {}", format_fixed(opt_number(tm, "flips"), 0),
                        format_general(opt_number(tm, "mcnemar_p")),
                        format_yes_no(opt_bool(tm, "significant"))));
  h += card(fmt::format("noise floor ({}) flip rate", or_undefined(opt_string(noise, "scheme"))),
            nf ? format_percent_ci(opt_number(noise, "flip_rate"), opt_number(noise, "flip_ci_low"),
                                   opt_number(noise, "flip_ci_high"))
               : std::string("not run"));
  h += card("target vs noise floor, exact p",
            nf ? format_general(opt_number(noise, "target_vs_noise_p")) : std::string("not run"));
  h += card("screen AUROC (predicting flips)",
            sc ? format_fixed(opt_number(screen, "auroc"), 3) : std::string("not run"));
  h += card("screen Spearman (score shift vs flips)",
            sc ? format_fixed(opt_number(screen, "spearman"), 3) : std::string("not run"));
  h += card("screen Spearman (candidate shift vs recovery)",
            sc ? format_fixed(opt_number(screen, "candidates_spearman"), 3) : std::string("not run"));
  return h + "</div></section>";
}

// IFEval accuracies of the baseline, the target and the plans that recovered (report.json
// "capability"); a plan that lost capability was not chosen.
std::string capability_html(const json& r) {
  std::string h = "<section><h2 id=\"capability\">Capability (IFEval)</h2>";
  const json* c = opt_object(r, "capability");
  const json* rows = c ? opt_array(*c, "rows") : nullptr;
  if (!rows) return h + kNotRun + "</section>";
  h += fmt::format("<p>{} IFEval prompts (a seeded subset), up to {} new tokens, scored in-house; each scheme against "
                   "the baseline by McNemar's exact test on the prompts it stops or starts following (prompt-level "
                   "strict). Lost: lower accuracy with p &lt; {}.</p>",
                   format_fixed(opt_number(*c, "prompts"), 0), format_fixed(opt_number(*c, "max_new_tokens"), 0),
                   opt_number(*c, "alpha") ? fmt::format("{:g}", *opt_number(*c, "alpha")) : std::string(kUndefined));
  h += "<table class=\"data\"><thead><tr><th>scheme</th><th>prompt strict</th><th>prompt loose</th>"
       "<th>instruction strict</th><th>instruction loose</th><th>&Delta; prompt strict</th>"
       "<th>stops / starts following</th><th>McNemar p</th><th>capability lost</th></tr></thead><tbody>";
  for (const json& row : *rows) {
    const auto d = opt_number(row, "delta_prompt_strict");
    h += fmt::format(
        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"nw\">{}</td>"
        "<td>{} / {}</td><td>{}</td><td>{}</td></tr>",
        escape_html_breakable(or_undefined(opt_string(row, "scheme"))), format_percent(opt_number(row, "ifeval_prompt_strict")),
        format_percent(opt_number(row, "ifeval_prompt_loose")), format_percent(opt_number(row, "ifeval_inst_strict")),
        format_percent(opt_number(row, "ifeval_inst_loose")),
        d ? fmt::format("{:+.1f} points", 100 * *d) : std::string(kUndefined), format_fixed(opt_number(row, "flips"), 0),
        format_fixed(opt_number(row, "reverse_flips"), 0), format_general(opt_number(row, "mcnemar_p")),
        format_yes_no(opt_bool(row, "lost")));
  }
  return h + "</tbody></table></section>";
}

std::string figure_section(std::string_view id, std::string_view title, const Figure& f) {
  return fmt::format("<section><h2>{}</h2><figure id=\"{}\" class=\"plot\" data-state=\"{}\">{}</figure></section>",
                     title, id, f.ran ? "ok" : "not-run", f.ran ? f.html : kNotRun);
}

std::string samples_section(const std::vector<json>& samples) {
  return fmt::format("<section><h2>Samples</h2><div id=\"sample-table\" data-state=\"{}\">{}</div></section>",
                     samples.empty() ? "not-run" : "ok",
                     samples.empty() ? kNotRun : sample_table_html(samples));
}

// Wall time per stage and the thresholds the rules used (as recorded, not decided here).
std::string timing_html(const json& r) {
  std::string h = "<section><h2 id=\"timing\">Timing and thresholds</h2>";
  if (const json* t = opt_object(r, "timing")) {
    h += "<table class=\"data narrow\"><thead><tr><th>stage</th><th>wall time</th></tr></thead><tbody>";
    // The protocol's stage order (the object arrives with its keys sorted), then any others.
    std::vector<std::string> order = {"load", "heldout", "screen", "layer_scan", "outliers", "ablation",
                                      "pcr_heldout", "geometry", "verify", "capability"};
    for (const auto& [stage, secs] : t->items())
      if (stage != "total" && std::find(order.begin(), order.end(), stage) == order.end()) order.push_back(stage);
    double total = 0;
    for (const std::string& stage : order) {
      if (!t->contains(stage)) continue;
      const json& secs = t->at(stage);
      const auto s = secs.is_number() ? std::optional<double>(secs.get<double>()) : std::nullopt;
      if (s && std::isfinite(*s)) total += *s;
      h += fmt::format("<tr><td>{}</td><td>{}</td></tr>", escape_html(stage), format_duration(s));
    }
    // The recorded total also counts what falls between stages (the report itself).
    const json* recorded = t->contains("total") && t->at("total").is_number() ? &t->at("total") : nullptr;
    h += fmt::format("<tr><td><b>total</b></td><td><b>{}</b></td></tr></tbody></table>",
                     format_duration(recorded ? recorded->get<double>() : total));
  } else {
    h += "<p>Timing: not run.</p>";
  }
  if (const json* th = opt_object(r, "thresholds")) {
    h += "<p>Thresholds (src/diagnose/rules.h): ";
    bool first = true;
    for (const auto& [key, v] : th->items()) {
      h += fmt::format("{}<code>{}</code> = {}", first ? "" : ", ", escape_html(key),
                       format_general(v.is_number() ? std::optional<double>(v.get<double>()) : std::nullopt));
      first = false;
    }
    h += "</p>";
  } else {
    h += "<p>Thresholds: not recorded.</p>";
  }
  return h + "</section>";
}

}  // namespace

std::string render_report_html(const json& report, const std::vector<json>& samples) {
  const json empty = json::object();
  const json& r = report.is_object() ? report : empty;
  const json* model = opt_object(r, "model");
  const std::string title = model ? opt_string(*model, "path").value_or("") : "";

  std::string h;
  h.reserve(256 * 1024);
  h += "<!DOCTYPE html>\n<html lang=\"en\" data-js-errors=\"0\"><head><meta charset=\"utf-8\">"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  h += "<title>kvaudit report" + (title.empty() ? std::string() : " \u2014 " + escape_html(title)) + "</title>";
  h += "<script>" + std::string(kErrorRecorderJs) + "</script>";
  h += "<style>" + std::string(kReportCss) + "</style></head><body><main>";
  h += header_html(r);
  h += summary_html(r);
  h += figure_section("plot-phase", "Phase transition", phase_plot(r));
  h += figure_section("plot-layers", "Critical layers", layer_plot(r));
  h += figure_section("plot-channels", "Key channel magnitudes", channel_plot(r));
  h += figure_section("plot-ablation", "Channel ablation", ablation_plot(r));
  h += figure_section("plot-pcr", "Per-channel reduction and failure mode", pcr_plot(r));
  h += figure_section("plot-geometry", "Safety-subspace geometry", geometry_plot(r));
  h += figure_section("plot-candidates", "Candidate plans", candidate_plot(r));
  h += capability_html(r);
  h += samples_section(samples);
  h += timing_html(r);
  // The report itself, machine-readable, escaped so no string in it can end the script block.
  h += "<script type=\"application/json\" id=\"report-data\">" + json_for_script(report) + "</script>";
  h += "</main><script>" + std::string(kTableFilterJs) + "</script></body></html>\n";
  return h;
}

void write_report_html(const std::string& path, const json& report, const std::vector<json>& samples) {
  io::write_file_atomic(path, render_report_html(report, samples));
}

}  // namespace kvaudit::report
