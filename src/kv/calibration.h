// Per-layer, per-role activation statistics that calibrated schemes read (SPEC.md §3: fp8 `calib`,
// `nuq`, `+protect`). The engine fills one through its hooks (observe() with exactly the rows it
// would append to that layer's cache: pre-RoPE keys for `@pre`, rotated keys otherwise); caching
// it per model is the engine's/eval's job, via to_json/from_json.
#pragma once
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "kv/cache.h"

namespace kvaudit::kv {

struct ChannelStats {
  int width = 0;
  int64_t rows_seen = 0;
  std::vector<float> max_abs;  // [width]: max |x| per channel over every observed row
  // [n_sample_rows, width]: a deterministic reservoir of observed rows. Consumers (nuq) use each
  // channel's distribution only, so the cache file stores every column sorted (calibration.cc) and
  // a loaded calibration holds row r = the r-th smallest value of each channel.
  std::vector<float> samples;
  int64_t n_sample_rows() const { return width ? int64_t(samples.size()) / width : 0; }
};

// A total order on floats as unsigned integers: -NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN.
uint32_t float_order_key(float f);
float float_from_order_key(uint32_t k);

class Calibration {
 public:
  // Reservoir size: enough values per channel for a 256-level codebook, small enough for JSON.
  static constexpr int64_t kMaxSampleRows = 1024;

  // rows: [n, width]. Not thread-safe: call from one thread per Calibration.
  void observe(int layer, Role role, bool pre_rope, const float* rows, int64_t n, int width);
  // nullptr when nothing was observed for that site.
  const ChannelStats* find(int layer, Role role, bool pre_rope) const;
  bool empty() const { return sites_.empty(); }

  // Format version kVersion: "max_abs_f32" (little-endian binary32 in base64: exact, unlike JSON
  // numbers for inf/NaN) and "samples_sorted" (per channel, sorted by float_order_key, delta-coded
  // varints in base64; about 4 characters a value instead of ~20 as JSON numbers in version 1).
  static constexpr int kVersion = 2;
  nlohmann::json to_json() const;
  // Reads versions 1 (samples as a number array) and 2. Throws UsageError naming what is
  // malformed, or the version when it is neither (a cache written by another build: recompute it).
  static Calibration from_json(const nlohmann::json& j);
  // The version a JSON document claims (0 when it has none); a cache loader recomputes when this
  // build cannot read it (not 1..kVersion).
  static int json_version(const nlohmann::json& j);
  static bool can_read(const nlohmann::json& j) { return json_version(j) >= 1 && json_version(j) <= kVersion; }

 private:
  // V rows ignore pre_rope (values are never rotated): stored under pre_rope = false.
  using Site = std::tuple<int, int, bool>;  // layer, role, pre_rope
  std::map<Site, ChannelStats> sites_;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;  // reservoir sampling, fixed seed for reproducibility
};

}  // namespace kvaudit::kv
