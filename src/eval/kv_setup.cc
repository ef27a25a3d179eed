#include "eval/kv_setup.h"

#include <cstdio>

#include <fmt/format.h>

#include "core/error.h"
#include "eval/calibration_pass.h"
#include "text/tokenizer.h"

namespace kvaudit::eval {

namespace {
// The note for a policy file whose "model" names other weights than the loaded model's; "" when it
// names none, when either is unknown, or when they agree.
std::string policy_model_note(const std::string& policy_path, const std::string& stated, const std::string& weights_sha256) {
  if (stated.empty() || weights_sha256.empty() || stated == weights_sha256) return "";
  return fmt::format("kvaudit: note: --kv-policy {} was prescribed for the weights {}; this model's are {}: "
                     "its plan runs as written, but its diagnosis was of another model\n",
                     policy_path, stated, weights_sha256);
}
}  // namespace

std::shared_ptr<const kv::KvPolicy> make_kv_policy(const KvOptions& o, int n_layers, const std::string& weights_sha256) {
  if (!o.spec.empty() && !o.policy.empty()) usage_error("--kv and --kv-policy exclude each other; give one");
  kv::KvPolicy p;
  if (!o.spec.empty()) p = kv::KvPolicy::parse(o.spec, n_layers);
  if (!o.policy.empty()) {
    try {
      p = kv::KvPolicy::load(o.policy, n_layers);
    } catch (const UsageError& e) {
      usage_error("--kv-policy: {}", e.what());
    }
    const std::string note = policy_model_note(o.policy, p.stated_model(), weights_sha256);
    if (!note.empty()) std::fputs(note.c_str(), stderr);
  }
  if (o.storage == "simulated") p.set_storage(kv::Storage::kSimulated);
  else if (o.storage == "packed") p.set_storage(kv::Storage::kPacked);
  else if (!o.storage.empty()) usage_error("--kv-storage must be simulated or packed, got '{}'", o.storage);
  if (o.compat == "paper") p.set_compat_paper(true);
  else if (o.compat == "none") p.set_compat_paper(false);
  else if (!o.compat.empty()) usage_error("--compat must be paper or none, got '{}'", o.compat);
  return std::make_shared<const kv::KvPolicy>(std::move(p));
}

void require_scheme_for_storage(bool has_scheme, const KvOptions& o) {
  if (!has_scheme && (!o.storage.empty() || !o.compat.empty()))
    usage_error("{} applies to the --kv / --kv-policy schemes and none is given (the 16-bit cache is not quantized)",
                o.storage.empty() ? "--compat" : "--kv-storage");
}

bool kv_needs_calibration(const KvOptions& o) {
  if (!o.spec.empty()) return kv::KvPolicy::parse(o.spec).needs_calibration();
  if (!o.policy.empty()) {
    try {
      return kv::KvPolicy::load(o.policy).needs_calibration();
    } catch (const UsageError& e) {
      usage_error("--kv-policy: {}", e.what());
    }
  }
  return false;
}

std::shared_ptr<const kv::KvPolicy> calibrate_if_needed(std::shared_ptr<const kv::KvPolicy> policy,
                                                        engine::Backend& backend, const std::string& model_path) {
  if (!policy->needs_calibration()) return policy;
  const text::Tokenizer tok = text::Tokenizer::load_for_model(model_path);
  std::vector<std::vector<int>> prompts;
  for (const std::string& t : calibration_texts()) prompts.push_back(tok.encode(t, true));
  auto calibrated = std::make_shared<kv::KvPolicy>(*policy);
  // "random:<seed>" names no weights file (two configs can share a seed): no cache for those.
  const std::string& sha = backend.model().weights_sha256;
  calibrated->calibrate(load_or_run_calibration(backend, prompts, sha.starts_with("random:") ? "" : sha));
  return calibrated;
}

}  // namespace kvaudit::eval
