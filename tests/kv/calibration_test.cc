// The calibration cache format (kv/calibration.h, version 2): per-channel sorted samples, delta-coded
// in base64. A round trip keeps every channel's distribution bit for bit, so calibrated schemes
// (nuq, +protect, fp8 calib) give the same rows from a loaded calibration as from the engine's;
// version 1 files still load; other versions and damaged payloads are UsageErrors, never crashes.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <random>

#include "core/error.h"
#include "kv/policy.h"

namespace kvaudit::kv {
namespace {

constexpr CacheGeometry kGeom{3, 64};  // SmolLM2-135M KV geometry: 3 KV heads x 64
constexpr int kWidth = 192;

// [n, kWidth] rows with the values that make ordering and encoding hard: both zeros, denormals,
// infinities, repeated values, and channels of very different scales.
std::vector<float> hard_rows(int64_t n, uint32_t seed, bool infinities = true) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(n) * kWidth);
  for (int64_t t = 0; t < n; ++t)
    for (int c = 0; c < kWidth; ++c) x[size_t(t) * kWidth + c] = nd(rng) * float(1 + c % 7) * (c == 5 ? 100.0f : 1.0f);
  for (int64_t t = 0; t < n; t += 3) {
    float* r = &x[size_t(t) * kWidth];
    r[1] = t % 2 ? -0.0f : 0.0f;
    r[2] = 1e-42f * float(t % 5);
    r[3] = 0.25f;
  }
  const float big = infinities ? std::numeric_limits<float>::infinity() : 3e38f;
  x[7] = big;
  x[kWidth + 7] = -big;
  return x;
}

Calibration observed(const std::vector<float>& x) {
  Calibration c;
  const int64_t n = int64_t(x.size()) / kWidth;
  for (Role r : {Role::K, Role::V})
    for (bool pre : {false, true}) c.observe(0, r, pre, x.data(), n, kWidth);
  return c;
}

std::vector<uint32_t> sorted_column(const ChannelStats& st, int c) {
  std::vector<uint32_t> col;
  for (int64_t r = 0; r < st.n_sample_rows(); ++r) col.push_back(float_order_key(st.samples[size_t(r) * st.width + c]));
  std::sort(col.begin(), col.end());
  return col;
}

TEST(CalibrationFormat, OrderKeyIsMonotoneAndInvertible) {
  const float xs[] = {-std::numeric_limits<float>::infinity(), -2.0f, -1e-42f, -0.0f, 0.0f, 1e-42f, 1.0f,
                      std::numeric_limits<float>::infinity()};
  for (size_t i = 0; i + 1 < std::size(xs); ++i) EXPECT_LT(float_order_key(xs[i]), float_order_key(xs[i + 1])) << i;
  for (float f : xs) EXPECT_EQ(std::bit_cast<uint32_t>(float_from_order_key(float_order_key(f))), std::bit_cast<uint32_t>(f));
}

TEST(CalibrationFormat, RoundTripKeepsEveryChannelsDistribution) {
  const Calibration c = observed(hard_rows(1500, 1));  // more rows than the reservoir keeps
  const nlohmann::json j = c.to_json();
  EXPECT_EQ(j["kvaudit_calibration"], Calibration::kVersion);
  const Calibration d = Calibration::from_json(nlohmann::json::parse(j.dump()));
  for (Role r : {Role::K, Role::V})
    for (bool pre : {false, true}) {
      const ChannelStats* a = c.find(0, r, pre);
      const ChannelStats* b = d.find(0, r, pre);
      ASSERT_NE(b, nullptr);
      EXPECT_EQ(b->width, a->width);
      EXPECT_EQ(b->rows_seen, a->rows_seen);
      ASSERT_EQ(b->n_sample_rows(), Calibration::kMaxSampleRows);
      EXPECT_EQ(0, std::memcmp(b->max_abs.data(), a->max_abs.data(), a->max_abs.size() * sizeof(float)));
      for (int ch = 0; ch < kWidth; ++ch) ASSERT_EQ(sorted_column(*b, ch), sorted_column(*a, ch)) << "channel " << ch;
    }
  // Writing a loaded calibration gives the same document.
  EXPECT_EQ(d.to_json(), j);
}

TEST(CalibrationFormat, LoadedCalibrationGivesTheSameCaches) {
  const std::vector<float> x = hard_rows(300, 2, /*infinities=*/false);  // version 1 cannot hold them
  auto live = std::make_shared<Calibration>(observed(x));
  auto loaded = std::make_shared<Calibration>(Calibration::from_json(nlohmann::json::parse(live->to_json().dump())));
  // Version 1 (numbers in row order) still loads and gives the same too.
  nlohmann::json v1 = live->to_json();
  v1["kvaudit_calibration"] = 1;
  for (auto& s : v1["sites"]) {
    const ChannelStats* st = live->find(0, s["role"] == "k" ? Role::K : Role::V, s["pre_rope"].get<bool>());
    s["samples"] = st->samples;
    s["max_abs"] = st->max_abs;
    s.erase("samples_sorted");
    s.erase("max_abs_f32");
    s.erase("sample_rows");
  }
  auto old = std::make_shared<Calibration>(Calibration::from_json(nlohmann::json::parse(v1.dump())));
  const std::vector<float> input = hard_rows(80, 3);
  for (const char* spec : {"nuq4", "nuq3:sparse=0.02", "nuq2@pre", "int4:token:asym+protect=5%", "fp8e4m3:scale=calib",
                           "kivi2+protect=2ch"})
    for (Role role : {Role::K, Role::V}) {
      std::vector<std::vector<float>> rows;
      for (const auto& cal : {live, loaded, old}) {
        KvPolicy p = KvPolicy::parse(spec);
        p.calibrate(cal);
        auto cache = p.make_cache(0, role, kGeom);
        cache->append(input.data(), 80);
        rows.emplace_back(cache->rows(), cache->rows() + input.size());
      }
      EXPECT_EQ(0, std::memcmp(rows[1].data(), rows[0].data(), input.size() * sizeof(float))) << spec;
      EXPECT_EQ(0, std::memcmp(rows[2].data(), rows[0].data(), input.size() * sizeof(float))) << spec << " (v1)";
    }
}

// Bytes of the cache file per stored sample value: ~20 as JSON numbers (version 1); the delta-coded
// sorted columns of normal-like activations take 3 bytes, 4 base64 characters.
constexpr double kMaxCharsPerSample = 4.5;

TEST(CalibrationFormat, FileIsSmall) {
  const Calibration c = observed(hard_rows(1024, 4));
  const size_t chars = c.to_json().dump().size();
  const double values = 4.0 * 1024 * kWidth;  // 4 sites
  EXPECT_LT(double(chars) / values, kMaxCharsPerSample) << chars << " chars";
}

TEST(CalibrationFormat, OtherVersionsAndDamageAreUsageErrors) {
  const nlohmann::json good = observed(hard_rows(20, 5)).to_json();
  EXPECT_TRUE(Calibration::can_read(good));
  for (int v : {0, 3, 99}) {
    nlohmann::json j = good;
    j["kvaudit_calibration"] = v;
    EXPECT_FALSE(Calibration::can_read(j)) << v;
    EXPECT_THROW(Calibration::from_json(j), UsageError) << v;
  }
  EXPECT_FALSE(Calibration::can_read(nlohmann::json::array()));
  EXPECT_THROW(Calibration::from_json(nlohmann::json::array()), UsageError);
  const std::string payload = good["sites"][0]["samples_sorted"];
  const std::vector<std::string> damaged = {payload.substr(0, payload.size() - 4),  // truncated
                                            payload + "AAAA",                       // trailing bytes
                                            payload.substr(1),                      // not a multiple of 4
                                            "!!!!" + payload.substr(4),             // not base64
                                            std::string(payload.size(), '/'),       // endless varints
                                            ""};
  for (const std::string& bad : damaged) {
    nlohmann::json j = good;
    j["sites"][0]["samples_sorted"] = bad;
    EXPECT_THROW(Calibration::from_json(j), UsageError) << bad.substr(0, 16);
  }
  for (int64_t rows : {int64_t{-1}, Calibration::kMaxSampleRows + 1}) {
    nlohmann::json j = good;
    j["sites"][0]["sample_rows"] = rows;
    EXPECT_THROW(Calibration::from_json(j), UsageError) << rows;
  }
  nlohmann::json j = good;
  j["sites"][0]["samples_sorted"] = 5;
  EXPECT_THROW(Calibration::from_json(j), UsageError);
}

}  // namespace
}  // namespace kvaudit::kv
