// kvaudit diagnose (SPEC.md §5, §7): critical layers, outlier channels, ablation, PCR (calibration
// and held-out), failure mode and prescription, geometry and screen; report.json and report.html.
#include "cli/commands.h"
#include "cli/protocol_options.h"

namespace kvaudit::cli {

void add_diagnose(CLI::App& app) {
  auto* cmd = app.add_subcommand("diagnose", "Critical layers, outliers, PCR, geometry, failure mode, prescription");
  auto o = std::make_shared<diagnose::ProtocolOptions>();
  add_protocol_options(cmd, *o, false);
  cmd->callback([o] { run_protocol_command(*o); });
}

}  // namespace kvaudit::cli
