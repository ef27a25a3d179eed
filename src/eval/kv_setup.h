// The KV-cache options shared by everything that runs the engine (SPEC.md §3, §7): `--kv SPEC`,
// `--kv-policy FILE.json`, `--kv-storage simulated|packed` and `--compat paper`, turned into policies
// (calibrated when a scheme needs it). The command-line flags themselves are cli/kv_options.h.
#pragma once
#include <memory>
#include <string>

#include "engine/engine.h"
#include "kv/policy.h"

namespace kvaudit::eval {

struct KvOptions {
  std::string spec;     // --kv; "" = not given
  std::string policy;   // --kv-policy FILE.json; "" = not given
  std::string storage;  // --kv-storage; "" = the policy file's, else simulated
  std::string compat;   // --compat; "" = the policy file's, else none
};

// The policy the options describe, its layer lists checked against n_layers. --kv and --kv-policy
// exclude each other; --kv-storage / --compat given on the command line override the file's
// "storage" / "compat". Throws UsageError naming the flag. Neither given: the fp16 baseline.
// weights_sha256 (the loaded model's, when known): a policy file prescribed for other weights (its
// "model") still runs as written, and a note on stderr says so.
std::shared_ptr<const kv::KvPolicy> make_kv_policy(const KvOptions& o, int n_layers,
                                                   const std::string& weights_sha256 = "");

// True when the options name a scheme that needs calibration (fp8 `scale=calib`, `nuq`, `+protect`):
// the command then loads the model with its sha256, the calibration cache key.
bool kv_needs_calibration(const KvOptions& o);

// UsageError when o's --kv-storage or --compat is given and no scheme is (has_scheme false): the
// 16-bit cache they would apply to is not quantized, so they would change nothing.
void require_scheme_for_storage(bool has_scheme, const KvOptions& o);

// The policy itself when it needs no calibration, else a copy calibrated by
// eval::load_or_run_calibration over eval::calibration_texts() (tokenized with model_path's
// tokenizer), cached under ~/.cache/kvaudit/calib/<weights_sha256>.json.
std::shared_ptr<const kv::KvPolicy> calibrate_if_needed(std::shared_ptr<const kv::KvPolicy> policy,
                                                        engine::Backend& backend, const std::string& model_path);

}  // namespace kvaudit::eval
