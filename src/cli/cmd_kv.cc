#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_kv(CLI::App& app) {
  auto* cmd = app.add_subcommand("kv", "(not implemented yet)");
  cmd->callback([] { runtime_error("'kv' is not implemented yet"); });
}

}  // namespace kvaudit::cli
