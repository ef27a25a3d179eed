#include "cli/kv_options.h"

#include "core/error.h"

namespace kvaudit::cli {

void add_kv_options(CLI::App* cmd, KvOptions& o) {
  cmd->add_option("--kv", o.spec, "KV-cache scheme spec (SPEC.md §3); default fp16");
  cmd->add_option("--kv-policy", o.policy, "per-layer KV policy JSON file (SPEC.md §3); excludes --kv");
  cmd->add_option("--kv-storage", o.storage,
                  "simulated (dequantized floats) | packed (codes at the scheme's real size); default simulated");
  cmd->add_option("--compat", o.compat, "paper: per-forward-call scales for tensor/channel schemes (SPEC.md §3)");
}

std::shared_ptr<const kv::KvPolicy> make_kv_policy(const KvOptions& o, int n_layers) {
  if (!o.spec.empty() && !o.policy.empty()) usage_error("--kv and --kv-policy exclude each other; give one");
  kv::KvPolicy p;
  if (!o.spec.empty()) p = kv::KvPolicy::parse(o.spec, n_layers);
  if (!o.policy.empty()) {
    try {
      p = kv::KvPolicy::load(o.policy);
      p.validate(n_layers);
    } catch (const UsageError& e) {
      usage_error("--kv-policy: {}", e.what());
    }
  }
  if (o.storage == "simulated") p.set_storage(kv::Storage::kSimulated);
  else if (o.storage == "packed") p.set_storage(kv::Storage::kPacked);
  else if (!o.storage.empty()) usage_error("--kv-storage must be simulated or packed, got '{}'", o.storage);
  if (o.compat == "paper") p.set_compat_paper(true);
  else if (o.compat == "none") p.set_compat_paper(false);
  else if (!o.compat.empty()) usage_error("--compat must be paper or none, got '{}'", o.compat);
  return std::make_shared<const kv::KvPolicy>(std::move(p));
}

}  // namespace kvaudit::cli
