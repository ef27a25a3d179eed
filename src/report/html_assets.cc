#include "report/html_assets.h"

namespace kvaudit::report {

// Colours: red marks what breaks safety (flips, critical layers, outliers), blue what is kept
// (refusals, plans within the noise floor), grey the controls. DejaVu Sans ships with Debian
// (fonts-dejavu-core); no web font is loaded.
const std::string_view kReportCss = R"CSS(
*{box-sizing:border-box}
body{margin:0;background:#f3f4f7;color:#1d2433;font:14px/1.45 "DejaVu Sans",system-ui,sans-serif}
main{max-width:1240px;margin:0 auto;padding:20px}
header,section{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:16px 20px;margin:0 0 18px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 10px}
code{font:13px "DejaVu Sans Mono",monospace;background:#eef0f4;padding:1px 4px;border-radius:3px;overflow-wrap:anywhere}
.meta{color:#555;margin:0 0 12px}
.finding{border-left:5px solid #d1495b;background:#fdf1f2;padding:10px 14px;font-size:16px;margin:0 0 12px}
.plan{border-left:5px solid #2f6db5;background:#eef4fb;padding:10px 14px}
.plan p{margin:4px 0}
nav{margin:10px 0 0;font-size:13px}
nav a{color:#2f6db5;margin-right:14px;text-decoration:none}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.card{border:1px solid #e3e6ec;border-radius:6px;padding:8px 12px}
.card .k{color:#666;font-size:12px}
.card .v{font-size:17px;font-weight:600}
figure{margin:0}
figcaption{color:#444;margin:6px 0 0;max-width:1100px}
.panels{display:flex;gap:20px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:8px 20px}
svg{max-width:100%;height:auto;display:block}
.not-run{color:#777;font-style:italic;font-size:15px;margin:4px 0}
.undefined{color:#777;font-style:italic}
table.data{border-collapse:collapse;width:100%;margin:12px 0 0;font-size:13px}
table.data th,table.data td{border-bottom:1px solid #e3e6ec;padding:5px 8px;text-align:left;vertical-align:top}
table.data th{background:#f6f7f9;position:sticky;top:0}
tr.chosen td{background:#fff6e0}
table.data.narrow{width:auto;min-width:420px}
table.data td.nw{white-space:nowrap}
table.data code{overflow-wrap:normal}
.badge{background:#e69b00;color:#fff;border-radius:3px;padding:0 5px;font-size:11px}
.filters{display:flex;gap:16px;align-items:center;flex-wrap:wrap}
.filters select{font:inherit;padding:2px 4px}
#sample-table div.text{white-space:pre-wrap;max-width:460px;max-height:9em;overflow:auto;overflow-wrap:anywhere}
tr.flip td{background:#fdf1f2}
.tick,.tick-sub{font-size:12px;fill:#444}
.tick-sub{fill:#777}
.axis-title{font-size:13px;fill:#222}
.legend{font-size:12px;fill:#222}
.panel-title{font-size:13px;font-weight:600;fill:#222}
.value-label{font-size:12px;font-weight:600;fill:#222}
.crit-label{fill:#b02a3c}
.threshold-label{font-size:12px;fill:#b02a3c}
.zone-label{font-size:12px;fill:#333}
.note{font-size:12px;fill:#777;font-style:italic}
/* A white halo keeps labels readable where they cross lines and bars. */
.value-label,.threshold-label{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.axis{stroke:#333;stroke-width:1}
.grid{stroke:#e6e8ed;stroke-width:1}
.threshold{stroke:#b02a3c;stroke-width:1.6;stroke-dasharray:7 4}
.ref{stroke:#777;stroke-width:1.2;stroke-dasharray:3 3}
.noise-line{stroke:#2a9d8f;stroke-width:1.6;stroke-dasharray:2 3}
.s-refusal{stroke:#2f6db5;fill:#2f6db5}
.s-flip{stroke:#d1495b;fill:#d1495b}
.s-ppl{stroke:#6a4c93;fill:#6a4c93}
.series{fill:none;stroke-width:2.4}
.dot{stroke:#fff;stroke-width:1.5}
.band-flip{fill:#d1495b;fill-opacity:.18;stroke:none}
.bar{fill:#9db4d0}
.bar.critical{fill:#d1495b}
.whisker{stroke:#222;stroke-width:1.2}
.stem{stroke:#7d93b2;stroke-width:1}
.stem-outlier{stroke:#d1495b;stroke-width:1.4}
.outlier-dot{fill:#d1495b}
.abl-tensor{fill:#5b6c8f}
.abl-channel{fill:#8fb3de}
.abl-outliers{fill:#d1495b}
.abl-rest{fill:#4caf7d}
.abl-random{fill:#b9a3d6}
.zone{stroke:none}
.zone-a{fill:#f7d7db}
.zone-b{fill:#fbedcf}
.zone-c{fill:#d9eee0}
.pcr-dot{fill:#1d2433;stroke:#fff;stroke-width:2}
.bar-vuln{fill:#d1495b}
.bar-random{fill:#a0a7b4}
.cand{fill:#2f6db5;stroke:#fff;stroke-width:1.5}
.cand-noisy{fill:#fff;stroke:#2f6db5;stroke-width:2}
.cand-undef{fill:#aaa}
.chosen-ring{fill:none;stroke:#e69b00;stroke-width:3}
.chosen-label{fill:#a86c00}
)CSS";

const std::string_view kErrorRecorderJs = R"JS(
(function () {
  var count = 0, log = [];
  function record(message) {
    count++;
    log.push(String(message));
    var root = document.documentElement;
    root.setAttribute('data-js-errors', String(count));
    root.setAttribute('data-js-error-log', log.join(' | '));
  }
  window.addEventListener('error', function (e) { record(e.message || 'error'); });
  window.addEventListener('unhandledrejection', function (e) { record('rejection: ' + e.reason); });
  var original = console.error;
  console.error = function () {
    record(Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
)JS";

const std::string_view kTableFilterJs = R"JS(
(function () {
  var root = document.documentElement;
  var box = document.getElementById('sample-table');
  var table = box && box.querySelector('table');
  if (table) {
    var filters = ['scheme', 'verdict', 'flip'].map(function (name) {
      return { name: name, el: document.getElementById('filter-' + name) };
    });
    var rows = table.tBodies[0].rows;
    var count = document.getElementById('filter-count');
    var apply = function () {
      var shown = 0;
      for (var i = 0; i < rows.length; i++) {
        var row = rows[i], keep = true;
        filters.forEach(function (f) {
          if (f.el.value !== '' && row.getAttribute('data-' + f.name) !== f.el.value) keep = false;
        });
        row.hidden = !keep;
        if (keep) shown++;
      }
      count.textContent = shown + ' of ' + rows.length + ' samples shown';
    };
    filters.forEach(function (f) { f.el.addEventListener('change', apply); });
    apply();
  }
  root.setAttribute('data-js-ready', '1');
})();
)JS";

}  // namespace kvaudit::report
