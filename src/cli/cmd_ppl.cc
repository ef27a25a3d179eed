#include "cli/commands.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_ppl(CLI::App& app) {
  auto* cmd = app.add_subcommand("ppl", "(not implemented yet)");
  cmd->callback([] { runtime_error("'ppl' is not implemented yet"); });
}

}  // namespace kvaudit::cli
