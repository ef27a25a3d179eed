// Streaming semantics, KIVI blocks and residual, +had, +protect, nuq, and packed == simulated for
// every scheme (SPEC.md §3).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "kv/memory.h"
#include "kv/policy.h"

namespace kvaudit::kv {
namespace {

constexpr CacheGeometry kGeom{4, 32};  // 4 KV heads x 32: multiple of every block and group size

std::vector<float> random_rows(int64_t n, int width, uint32_t seed, bool outliers = true) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(n) * width);
  for (auto& v : x) v = nd(rng);
  if (outliers)  // a few large channels, as real keys have
    for (int64_t t = 0; t < n; ++t) x[size_t(t) * width + 3] *= 20.0f, x[size_t(t) * width + 17] *= 8.0f;
  return x;
}

std::shared_ptr<Calibration> calibration_for(const std::vector<float>& x, int width) {
  auto c = std::make_shared<Calibration>();
  for (Role r : {Role::K, Role::V})
    for (bool pre : {false, true}) c->observe(0, r, pre, x.data(), int64_t(x.size()) / width, width);
  return c;
}

bool bit_equal(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

// Every scheme family once, with modifiers.
const char* const kAllSchemes[] = {
    "bf16", "int8:token:asym", "int4:token:sym", "int3:head:asym", "int2:group:g32", "int4:group:sym:g16:r8",
    "int1:token:asym", "int5:tensor:sym", "int4:tensor:asym:r4", "int2:channel:g8:r16", "int4:channel:sym:g4",
    "kivi2", "kivi4:g8:r16", "fp8e4m3", "fp8e5m2", "fp8e4m3:scale=0.5", "fp8e4m3:scale=calib", "fp8e5m2:scale=dynamic",
    "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "nuq3", "nuq4:sparse=0.02", "int4:token+had", "kivi2+had",
    "int3:tensor:sym@pre+protect=5%", "int4:group:g32+protect=3ch", "q4_0+protect=2ch", "int2:channel:g8+protect=4ch",
    "fp8e5m2+protect=1ch", "nuq2:sparse=0.01+protect=2ch"};

std::unique_ptr<LayerCache> make(const std::string& spec, Role role, Storage st, std::shared_ptr<Calibration> cal,
                                 bool compat = false) {
  KvPolicy p = KvPolicy::parse(spec);
  p.set_storage(st);
  p.set_compat_paper(compat);
  p.calibrate(std::move(cal));
  return p.make_cache(0, role, kGeom);
}

TEST(Cache, PackedEqualsSimulatedForEveryScheme) {
  const int w = kGeom.width();
  const auto x = random_rows(45, w, 1);
  const auto cal = calibration_for(random_rows(64, w, 2), w);
  for (const char* spec : kAllSchemes)
    for (Role role : {Role::K, Role::V})
      for (bool compat : {false, true}) {
        auto sim = make(spec, role, Storage::kSimulated, cal, compat);
        auto pk = make(spec, role, Storage::kPacked, cal, compat);
        // A prefill of 13 rows, then decode one row at a time.
        int64_t t = 0;
        for (int64_t n : {13, 1, 1, 1, 5, 1}) {
          EXPECT_EQ(sim->append(&x[size_t(t) * w], n), pk->append(&x[size_t(t) * w], n)) << spec;
          t += n;
        }
        while (t < 45) {
          sim->append(&x[size_t(t) * w], 1);
          pk->append(&x[size_t(t) * w], 1);
          ++t;
        }
        ASSERT_EQ(sim->size(), 45);
        EXPECT_TRUE(bit_equal(sim->rows(), pk->rows(), size_t(45) * w)) << spec << " role " << int(role);
        EXPECT_EQ(sim->bytes(), pk->bytes()) << spec;
        // And something was actually quantized (except bf16): not all values survive unchanged.
        if (std::string(spec) == "bf16") continue;
        EXPECT_FALSE(bit_equal(sim->rows(), x.data(), size_t(45) * w)) << spec;
      }
}

TEST(Cache, TokenWiseSchemesStreamLikeOnePrefill) {
  const int w = kGeom.width();
  const auto x = random_rows(20, w, 3);
  const auto cal = calibration_for(x, w);
  for (const char* spec : {"int4:token:asym", "int3:head:sym", "int2:group:g16", "int4:group:g32:r5", "fp8e4m3",
                           "fp8e5m2:scale=dynamic", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "nuq3:sparse=0.05",
                           "kivi2"}) {
    const Role role = std::string(spec) == "kivi2" ? Role::V : Role::K;  // KIVI values: token groups
    auto one = make(spec, role, Storage::kSimulated, cal);
    auto stream = make(spec, role, Storage::kSimulated, cal);
    EXPECT_EQ(one->append(x.data(), 20), 0);
    for (int64_t t = 0; t < 20; ++t) stream->append(&x[size_t(t) * w], 1);
    EXPECT_TRUE(bit_equal(one->rows(), stream->rows(), x.size())) << spec;
  }
}

TEST(Cache, LongPrefillThroughTheResidualEqualsStreaming) {
  // 600 rows: more than one internal chunk of a prefill. With a residual, values are fp16 on arrival
  // and blocks align to multiples of R from the start, so streaming gives the same rows.
  const int w = kGeom.width();
  const auto x = random_rows(600, w, 9);
  for (const char* spec : {"kivi2", "int2:channel:g8:r16", "int4:group:g32:r5", "kivi4:g16:r48+had"})
    for (Role role : {Role::K, Role::V})
      for (Storage st : {Storage::kSimulated, Storage::kPacked}) {
        auto one = make(spec, role, st, nullptr);
        auto stream = make(spec, role, Storage::kSimulated, nullptr);
        const int64_t first = one->append(x.data(), 600);
        EXPECT_EQ(first, 0);
        for (int64_t t = 0; t < 600; ++t) stream->append(&x[size_t(t) * w], 1);
        EXPECT_TRUE(bit_equal(one->rows(), stream->rows(), x.size())) << spec << " role " << int(role);
        EXPECT_EQ(one->bytes(), stream->bytes()) << spec;
      }
}

TEST(Cache, KiviKeysQuantizeWholeBlocksOfTheResidual) {
  // One channel, kivi2:g2:r2 keys: blocks of 2 tokens, per channel asym, quantized when 2 are pending.
  KvPolicy p = KvPolicy::parse("kivi2:g2:r2");
  auto c = p.make_cache(0, Role::K, {1, 1});
  const float xs[] = {-1, 2, 0.5f, 3.5f, 0.1f};
  EXPECT_EQ(c->append(&xs[0], 1), 0);
  EXPECT_EQ(c->rows()[0], -1.0f);  // 16-bit residual
  EXPECT_EQ(c->append(&xs[1], 1), 0);  // block [-1, 2]: s = 1, z = 1 -> exact; rows from 0 may change
  EXPECT_EQ(c->append(&xs[2], 1), 2);
  EXPECT_EQ(c->rows()[2], 0.5f);
  EXPECT_EQ(c->append(&xs[3], 1), 2);  // block [0.5, 3.5]: s = 1, z = round(-0.5) = 0: round(0.5) = 0, 4 -> 3
  EXPECT_EQ(c->append(&xs[4], 1), 4);
  const std::vector<float> want = {-1, 2, 0, 3, 0.0999755859375f};  // the residual is fp16: 0.1 -> 0.09998
  EXPECT_EQ(std::vector<float>(c->rows(), c->rows() + 5), want);
  // Codes 1 byte/token (2 bits of one channel), 2 blocks x (s, z) x 4 bytes (fp32), 1 residual value x 2 bytes.
  EXPECT_EQ(c->bytes(), 4u * 1 + 2 * 2 * 4 + 2);
  // One prefill of all five gives the same rows.
  auto one = p.make_cache(0, Role::K, {1, 1});
  EXPECT_EQ(one->append(xs, 5), 0);
  EXPECT_TRUE(bit_equal(one->rows(), c->rows(), 5));
}

TEST(Cache, KiviValuesKeepTheNewestRTokens) {
  auto c = KvPolicy::parse("kivi2:g2:r2").make_cache(0, Role::V, {1, 2});
  const float xs[] = {-1, 2, 0.5f, 3.5f, 1, 1, 7, 7};
  EXPECT_EQ(c->append(&xs[0], 1), 0);
  EXPECT_EQ(c->append(&xs[2], 1), 1);
  EXPECT_EQ(c->rows()[2], 0.5f);  // rows 0, 1 still 16-bit
  EXPECT_EQ(c->append(&xs[4], 1), 0);  // row 0 leaves the window: [-1, 2] -> s = 1, z = 1, exact
  EXPECT_EQ(c->append(&xs[6], 1), 1);  // row 1 quantized: [0.5, 3.5] -> 0, 3
  const std::vector<float> want = {-1, 2, 0, 3, 1, 1, 7, 7};
  EXPECT_EQ(std::vector<float>(c->rows(), c->rows() + 8), want);
}

TEST(Cache, ChannelCompatPaperFitsEachCall) {
  KvPolicy p = KvPolicy::parse("int2:channel:g2");
  p.set_compat_paper(true);
  auto c = p.make_cache(0, Role::K, {1, 1});
  const float xs[] = {-1, 2, 0.5f};
  EXPECT_EQ(c->append(xs, 2), 0);  // the prompt as one set per channel: exact here
  // One value alone (lossy, as in the paper): s = 1e-8 (the floor), z = clamp(round(-0.5/1e-8)) = 0,
  // q = clamp(round(0.5/1e-8)) = 3 -> x' = 3e-8.
  EXPECT_EQ(c->append(&xs[2], 1), 2);
  EXPECT_EQ(std::vector<float>(c->rows(), c->rows() + 3), (std::vector<float>{-1, 2, 3 * 1e-8f}));
}

TEST(Cache, HadamardRotatesEachHead) {
  // One head of 4: x = e0 -> H x / 2 = (0.5, 0.5, 0.5, 0.5); int8 sym: s = 0.5/127, q = 127,
  // x' = 127·s; the inverse gives e0 back up to float rounding.
  auto c = KvPolicy::parse("int8:token:sym+had").make_cache(0, Role::K, {1, 4});
  const float x[] = {1, 0, 0, 0};
  c->append(x, 1);
  const float s = 0.5f / 127;  // int8 sym scale of the rotated row
  const float v = 127 * s;     // each rotated value after quantization
  const float back = (v + v + v + v) * 0.5f;
  EXPECT_EQ(c->rows()[0], back);
  EXPECT_EQ(c->rows()[1], 0.0f);
  EXPECT_THROW(KvPolicy::parse("int4:token+had").make_cache(0, Role::K, {2, 48}), UsageError);
}

TEST(Cache, ProtectedChannelsStayFp16AndLeaveTheScale) {
  // Channel 1 has the largest calibration max|x|: protected, kept as fp16(x); the others get their own scale.
  const std::vector<float> cal_rows = {1, 100, 2, 1};
  auto cal = std::make_shared<Calibration>();
  cal->observe(0, Role::K, false, cal_rows.data(), 1, 4);
  KvPolicy p = KvPolicy::parse("int2:token:sym+protect=1ch");
  EXPECT_THROW(p.make_cache(0, Role::K, {1, 4}), UsageError);  // no calibration yet
  p.calibrate(cal);
  auto c = p.make_cache(0, Role::K, {1, 4});
  const float x[] = {1, 100.1f, -1, 0.5f};
  c->append(x, 1);
  // Unprotected {1, -1, 0.5}: s = 1 -> 1, -1, round(0.5) = 0. Protected: fp16(100.1) = 100.125.
  EXPECT_EQ(std::vector<float>(c->rows(), c->rows() + 4), (std::vector<float>{1, 100.125f, -1, 0}));
  EXPECT_EQ(c->bytes(), 1u + 4 + 2);  // 3 codes x 2 bits -> 1 byte, one fp32 scale, one fp16 protected value
}

TEST(Cache, NuqUsesCalibratedLevelsAndKeepsOutliers) {
  // Calibration: channel values 0, 1, 2, 3 (x 64): nuq2 learns exactly these four levels.
  std::vector<float> cal_rows;
  for (int r = 0; r < 256; ++r) cal_rows.push_back(float(r % 4));
  auto cal = std::make_shared<Calibration>();
  cal->observe(0, Role::V, false, cal_rows.data(), 256, 1);
  KvPolicy p = KvPolicy::parse("nuq2");
  p.calibrate(cal);
  auto c = p.make_cache(0, Role::V, {1, 1});
  const float x[] = {0.4f, 0.5f, 2.6f, 9};
  c->append(x, 4);
  // Nearest level, ties to the lower one; 9 clamps to the top level without outliers.
  EXPECT_EQ(std::vector<float>(c->rows(), c->rows() + 4), (std::vector<float>{0, 0, 3, 3}));
}

TEST(Cache, BytesMatchTheFormulaForEveryScheme) {
  const int w = kGeom.width();
  const auto x = random_rows(70, w, 5);
  const auto cal = calibration_for(x, w);
  for (const char* spec : kAllSchemes) {
    if (std::string(spec).rfind("nuq", 0) == 0) continue;  // outlier counts are the data's
    for (Role role : {Role::K, Role::V}) {
      auto c = make(spec, role, Storage::kPacked, cal);
      c->append(x.data(), 70);
      const SchemeSpec s = KvPolicy::parse(spec).scheme(0, role);
      EXPECT_EQ(double(c->bytes()), cache_bytes(s, role, kGeom, 70)) << spec << " role " << int(role);
    }
  }
}

}  // namespace
}  // namespace kvaudit::kv
