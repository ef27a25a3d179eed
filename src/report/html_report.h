// report.html (SPEC.md §5-6): one self-contained offline page drawn from report.json and the
// per-sample records. Inline CSS, inline SVG and a little inline JS (the sample-table filter and
// an error recorder); nothing is fetched. Every field may be missing or null: its section then
// reads "not run" and a null metric reads "undefined", never 0.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::report {

// samples: {"id", "bench", "scheme", "prompt", "response", "refused": bool, "flip": bool}
// (flip = the baseline refused and this scheme did not). All text is HTML-escaped.
std::string render_report_html(const nlohmann::json& report,
                               const std::vector<nlohmann::json>& samples);

// Renders and writes the page atomically (io::write_file_atomic).
void write_report_html(const std::string& path, const nlohmann::json& report,
                       const std::vector<nlohmann::json>& samples);

}  // namespace kvaudit::report
