#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_tokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "(not implemented yet)");
  cmd->callback([] { runtime_error("'tokenize' is not implemented yet"); });
}

}  // namespace kvaudit::cli
