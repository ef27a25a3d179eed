#include "cli/kv_options.h"

#include "cli/commands.h"

namespace kvaudit::cli {

void add_kv_options(CLI::App* cmd, KvOptions& o) {
  cmd->add_option("--kv", o.spec, "KV-cache scheme spec (SPEC.md §3); default fp16")->check(kNonEmpty);
  cmd->add_option("--kv-policy", o.policy, "per-layer KV policy JSON file (SPEC.md §3); excludes --kv")->check(kNonEmpty);
  add_kv_storage_options(cmd, o);
}

void add_kv_storage_options(CLI::App* cmd, KvOptions& o) {
  cmd->add_option("--kv-storage", o.storage,
                  "simulated (dequantized floats) | packed (codes at the scheme's real size); default simulated");
  cmd->add_option("--compat", o.compat, "paper: per-forward-call scales for tensor/channel schemes (SPEC.md §3)");
}

}  // namespace kvaudit::cli
