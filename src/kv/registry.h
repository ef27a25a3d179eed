// From a parsed scheme to a cache: one place that knows every scheme (SPEC.md §3).
#pragma once
#include <memory>
#include <optional>

#include "kv/cache.h"
#include "kv/calibration.h"
#include "kv/layout.h"
#include "kv/spec.h"

namespace kvaudit::kv {

enum class Storage;

struct CacheOptions {
  Storage storage;
  bool compat_paper = false;
  const ChannelStats* stats = nullptr;  // calibration of this site, nullptr if none
  int layer = 0;                         // for messages
};

// KIVI expands per role (SPEC.md §3): K = int channel asym gN rR, V = int group gN asym, newest R
// tokens kept 16-bit. Other schemes are returned unchanged.
SchemeSpec effective_scheme(const SchemeSpec& s, Role role);

// Throws UsageError for a geometry or calibration the scheme cannot use.
std::unique_ptr<LayerCache> make_scheme_cache(const SchemeSpec& s, Role role, CacheGeometry g, const CacheOptions& o);

// The scheme's stored row as kv/layout.h describes it, for a device engine that quantizes on write:
// fp16, bf16, intB token/head/group/tensor (sym or asym), fp8 e4m3/e5m2 with a fixed, calibrated or
// dynamic scale. nullopt for the rest, which the host caches (make_scheme_cache) keep: residual
// windows (`:rR`, KIVI, channel), +had, +protect, `@pre` keys, llama.cpp blocks, nuq, and `tensor`
// under --compat paper (refitted per call). Validates as make_scheme_cache does.
std::optional<KvLayout> scheme_layout(const SchemeSpec& s, Role role, CacheGeometry g, const CacheOptions& o);

}  // namespace kvaudit::kv
