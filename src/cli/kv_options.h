// The command-line flags of the KV options (eval/kv_setup.h holds what they mean).
#pragma once
#include <CLI/CLI.hpp>

#include "eval/kv_setup.h"

namespace kvaudit::cli {

using eval::KvOptions;
using eval::calibrate_if_needed;
using eval::kv_needs_calibration;
using eval::make_kv_policy;

// Adds --kv, --kv-policy, --kv-storage and --compat to `cmd`; `o` must outlive the parse.
void add_kv_options(CLI::App* cmd, KvOptions& o);

// Adds only --kv-storage and --compat (into o.storage / o.compat): for commands that name their
// schemes otherwise (`eval` repeats --kv, `sweep` derives them); each scheme's policy is then
// make_kv_policy({spec, "", o.storage, o.compat}, n_layers).
void add_kv_storage_options(CLI::App* cmd, KvOptions& o);

}  // namespace kvaudit::cli
