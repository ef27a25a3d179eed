#include "kv/calibration.h"

#include <cmath>

#include "core/error.h"

namespace kvaudit::kv {

void Calibration::observe(int layer, Role role, bool pre_rope, const float* rows, int64_t n, int width) {
  if (role == Role::V) pre_rope = false;
  ChannelStats& st = sites_[Site{layer, int(role), pre_rope}];
  if (st.width == 0) {
    st.width = width;
    st.max_abs.assign(width, 0.0f);
  }
  if (st.width != width) runtime_error("calibration: layer {} width changed from {} to {}", layer, st.width, width);
  for (int64_t t = 0; t < n; ++t) {
    const float* x = rows + t * width;  // [width]
    for (int c = 0; c < width; ++c) st.max_abs[c] = std::max(st.max_abs[c], std::fabs(x[c]));
    // Reservoir sampling (Vitter's algorithm R) with a fixed-seed xorshift: reproducible runs.
    int64_t slot = st.rows_seen;
    if (st.rows_seen >= kMaxSampleRows) {
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      slot = int64_t(rng_ % uint64_t(st.rows_seen + 1));
    }
    if (slot < kMaxSampleRows) {
      if (slot >= st.n_sample_rows()) st.samples.resize(size_t(slot + 1) * width);
      std::copy(x, x + width, st.samples.begin() + slot * width);
    }
    ++st.rows_seen;
  }
}

const ChannelStats* Calibration::find(int layer, Role role, bool pre_rope) const {
  if (role == Role::V) pre_rope = false;
  auto it = sites_.find(Site{layer, int(role), pre_rope});
  return it == sites_.end() ? nullptr : &it->second;
}

nlohmann::json Calibration::to_json() const {
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& [site, st] : sites_) {
    const auto& [layer, role, pre] = site;
    sites.push_back({{"layer", layer}, {"role", role == int(Role::K) ? "k" : "v"}, {"pre_rope", pre},
                     {"width", st.width}, {"rows_seen", st.rows_seen}, {"max_abs", st.max_abs},
                     {"samples", st.samples}});
  }
  return {{"kvaudit_calibration", 1}, {"sites", sites}};
}

Calibration Calibration::from_json(const nlohmann::json& j) {
  Calibration c;
  try {
    if (j.value("kvaudit_calibration", 0) != 1) usage_error("calibration: missing \"kvaudit_calibration\": 1");
    for (const auto& s : j.at("sites")) {
      ChannelStats st;
      st.width = s.at("width").get<int>();
      st.rows_seen = s.at("rows_seen").get<int64_t>();
      st.max_abs = s.at("max_abs").get<std::vector<float>>();
      st.samples = s.at("samples").get<std::vector<float>>();
      const std::string role = s.at("role").get<std::string>();
      if (st.width <= 0 || st.max_abs.size() != size_t(st.width) || st.samples.size() % size_t(st.width) != 0 ||
          (role != "k" && role != "v"))
        usage_error("calibration: site of layer {} is malformed", s.at("layer").get<int>());
      c.sites_[Site{s.at("layer").get<int>(), role == "k" ? int(Role::K) : int(Role::V), s.at("pre_rope").get<bool>()}] =
          std::move(st);
    }
  } catch (const nlohmann::json::exception& e) {
    usage_error("calibration: {}", e.what());
  }
  return c;
}

}  // namespace kvaudit::kv
