#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "(not implemented yet)");
  cmd->callback([] { runtime_error("'bench' is not implemented yet"); });
}

}  // namespace kvaudit::cli
