#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_logits(CLI::App& app) {
  auto* cmd = app.add_subcommand("logits", "(not implemented yet)");
  cmd->callback([] { runtime_error("'logits' is not implemented yet"); });
}

}  // namespace kvaudit::cli
