#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_diagnose(CLI::App& app) {
  auto* cmd = app.add_subcommand("diagnose", "(not implemented yet)");
  cmd->callback([] { runtime_error("'diagnose' is not implemented yet"); });
}

}  // namespace kvaudit::cli
