#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "(not implemented yet)");
  cmd->callback([] { runtime_error("'generate' is not implemented yet"); });
}

}  // namespace kvaudit::cli
