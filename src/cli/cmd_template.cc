#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_template(CLI::App& app) {
  auto* cmd = app.add_subcommand("template", "(not implemented yet)");
  cmd->callback([] { runtime_error("'template' is not implemented yet"); });
}

}  // namespace kvaudit::cli
