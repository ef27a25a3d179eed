// The inline stylesheet and scripts of report.html. Kept apart from the page assembly so the
// markup code reads as structure; nothing here is fetched (the page is one offline file).
#pragma once
#include <string_view>

namespace kvaudit::report {

// Page and SVG styling; SVG marks carry only class names (svg_plot.h, report_plots.cc).
extern const std::string_view kReportCss;
// First script in <head>: counts uncaught errors and console.error calls into the root element's
// data-js-errors / data-js-error-log attributes, so a headless browser's DOM dump shows them.
extern const std::string_view kErrorRecorderJs;
// Last script in <body>: the sample table's scheme / verdict / flip filter (plain DOM); sets
// data-js-ready="1" on the root element once it has run.
extern const std::string_view kTableFilterJs;

}  // namespace kvaudit::report
