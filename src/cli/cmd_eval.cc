#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "(not implemented yet)");
  cmd->callback([] { runtime_error("'eval' is not implemented yet"); });
}

}  // namespace kvaudit::cli
