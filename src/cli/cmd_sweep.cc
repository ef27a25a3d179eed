#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_sweep(CLI::App& app) {
  auto* cmd = app.add_subcommand("sweep", "(not implemented yet)");
  cmd->callback([] { runtime_error("'sweep' is not implemented yet"); });
}

}  // namespace kvaudit::cli
