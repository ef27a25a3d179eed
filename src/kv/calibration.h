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
  std::vector<float> samples;  // [n_sample_rows, width]: a deterministic reservoir of observed rows
  int64_t n_sample_rows() const { return width ? int64_t(samples.size()) / width : 0; }
};

class Calibration {
 public:
  // Reservoir size: enough values per channel for a 256-level codebook, small enough for JSON.
  static constexpr int64_t kMaxSampleRows = 1024;

  // rows: [n, width]. Not thread-safe: call from one thread per Calibration.
  void observe(int layer, Role role, bool pre_rope, const float* rows, int64_t n, int width);
  // nullptr when nothing was observed for that site.
  const ChannelStats* find(int layer, Role role, bool pre_rope) const;
  bool empty() const { return sites_.empty(); }

  nlohmann::json to_json() const;
  // Throws UsageError naming what is malformed.
  static Calibration from_json(const nlohmann::json& j);

 private:
  // V rows ignore pre_rope (values are never rotated): stored under pre_rope = false.
  using Site = std::tuple<int, int, bool>;  // layer, role, pre_rope
  std::map<Site, ChannelStats> sites_;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;  // reservoir sampling, fixed seed for reproducibility
};

}  // namespace kvaudit::kv
