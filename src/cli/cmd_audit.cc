#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_audit(CLI::App& app) {
  auto* cmd = app.add_subcommand("audit", "(not implemented yet)");
  cmd->callback([] { runtime_error("'audit' is not implemented yet"); });
}

}  // namespace kvaudit::cli
