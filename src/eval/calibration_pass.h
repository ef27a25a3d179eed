// The calibration pass that fp8 `scale=calib`, `nuq` and `+protect` need (SPEC.md §3): the model
// runs over calibration prompts with the 16-bit cache, and engine::Hooks::on_kv feeds every K/V
// row it computes to kv::Calibration::observe. Cached per model as JSON.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "kv/calibration.h"

namespace kvaudit::eval {

// Prefills each prompt (token ids) once; pre-RoPE keys, rotated keys and values are observed per
// layer, so both `@pre` and `@post` sites are covered.
kv::Calibration run_calibration(engine::Backend& backend, std::span<const std::vector<int>> prompts);

// The built-in calibration prompts (SPEC.md §5 uses 20): short chat-style requests, harmless and
// harmful, tokenized by the caller with the model's tokenizer.
const std::vector<std::string>& calibration_texts();

// <cache_dir>/<weights_sha256>.json; cache_dir "" means ~/.cache/kvaudit/calib.
std::string calibration_cache_path(const std::string& weights_sha256, const std::string& cache_dir = "");

// The cached calibration of this model when the file exists, else run_calibration() and write it
// (atomically). weights_sha256 "" (not computed) skips the cache. Throws UsageError for a corrupt
// cache file, naming it.
std::shared_ptr<const kv::Calibration> load_or_run_calibration(engine::Backend& backend,
                                                               std::span<const std::vector<int>> prompts,
                                                               const std::string& weights_sha256,
                                                               const std::string& cache_dir = "");

}  // namespace kvaudit::eval
