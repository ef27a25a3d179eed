// The plots of report.html (SPEC.md §5), one function per figure, each drawn from report.json
// alone. A figure whose data is missing or null is "not run"; the caller writes that. Every line
// drawn at a rule's boundary comes from report["thresholds"]: the report formats, it never decides.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace kvaudit::report {

struct Figure {
  bool ran = false;   // false: the section's data is absent (the stage was not run)
  std::string html;   // SVG(s) and captions, ready to go inside the figure element
};

Figure phase_plot(const nlohmann::json& report);       // refusal/flip vs bits, CI band; ppl ratio
Figure layer_plot(const nlohmann::json& report);       // per-layer flip bars, critical highlighted
Figure channel_plot(const nlohmann::json& report);     // max|k| per channel, threshold, outliers
Figure ablation_plot(const nlohmann::json& report);    // ablation flip rates with CIs
Figure pcr_plot(const nlohmann::json& report);         // PCR on 0..1 with the mode thresholds
Figure geometry_plot(const nlohmann::json& report);    // vulnerability ratio per layer, log y
Figure candidate_plot(const nlohmann::json& report);   // recovery vs memory overhead + table

}  // namespace kvaudit::report
