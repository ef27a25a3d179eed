// The per-sample table of report.html: one row per prompt x scheme with its verdict and flip,
// filterable by scheme, verdict and flip (the filter script is html_assets.h's kTableFilterJs).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::report {

// The filter controls and the table; prompts and responses are escaped (they are adversarial
// text). Each row carries data-scheme, data-verdict ("refused" / "complied" / "undefined") and
// data-flip ("yes" / "no" / "undefined") for the filter.
std::string sample_table_html(const std::vector<nlohmann::json>& samples);

}  // namespace kvaudit::report
