// SPEC.md §5 channel ablation: "only S" = the channels of S quantized (sym intB) with a scale over S
// alone, the rest 16-bit; and the policy-file form of it. Expected values computed by hand.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kv/policy.h"
#include "kv/subset_cache.h"

namespace kvaudit::kv {
namespace {

constexpr CacheGeometry kGeom{1, 4};

TEST(SubsetCache, TensorScaleOverSubsetOnly) {
  // S = {1, 3}; channel 0 holds 100 (not in S: must neither move nor widen the scale).
  // int3 sym: qmax 3, s = max|x over S| / 3 = 6/3 = 2.
  ChannelSubset s{{1, 3}, 3, SubsetScale::kTensor};
  auto cache = make_subset_cache(s, kGeom);
  const float rows[] = {100.0f, 6.0f, 0.7f, -3.0f,   //
                        -50.0f, 1.0f, 0.3f, 2.9f};
  EXPECT_EQ(cache->append(rows, 2), 0);
  const float* r = cache->rows();
  // 6/2 = 3 -> 6; -3/2 = -1.5 -> -2 (half to even) -> -4; 1/2 = 0.5 -> 0; 2.9/2 = 1.45 -> 1 -> 2.
  const float expected[] = {100.0f, 6.0f, 0.7f, -4.0f, -50.0f, 0.0f, 0.3f, 2.0f};
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(r[i], expected[i]) << i;
  // A later token keeps the prefill's scale and saturates at qmin·s = -8 and qmax·s = 6.
  const float next[] = {1.0f, 40.0f, 5.0f, -40.0f};
  EXPECT_EQ(cache->append(next, 1), 2);
  EXPECT_FLOAT_EQ(cache->rows()[8 + 1], 6.0f);
  EXPECT_FLOAT_EQ(cache->rows()[8 + 3], -8.0f);
  EXPECT_FLOAT_EQ(cache->rows()[8 + 2], 5.0f);
}

TEST(SubsetCache, PerChannelScales) {
  // Channel 1: s = 6/3 = 2; channel 3: s = 3/3 = 1. -3/1 = -3 exact; 2.9 -> 3.
  ChannelSubset s{{1, 3}, 3, SubsetScale::kChannel};
  auto cache = make_subset_cache(s, kGeom);
  const float rows[] = {100.0f, 6.0f, 0.7f, -3.0f, -50.0f, 1.0f, 0.3f, 2.9f};
  cache->append(rows, 2);
  const float expected[] = {100.0f, 6.0f, 0.7f, -3.0f, -50.0f, 0.0f, 0.3f, 3.0f};
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(cache->rows()[i], expected[i]) << i;
}

TEST(SubsetCache, AllZeroSubsetStaysZero) {
  ChannelSubset s{{0}, 3, SubsetScale::kTensor};
  auto cache = make_subset_cache(s, kGeom);
  const float rows[] = {0.0f, 1.0f, 2.0f, 3.0f};
  cache->append(rows, 1);
  const float later[] = {5.0f, 1.0f, 2.0f, 3.0f};
  cache->append(later, 1);
  EXPECT_EQ(cache->rows()[4], 0.0f);  // saturates to the prefill's range {0}, never NaN
}

TEST(SubsetCache, Bytes) {
  // 2 channels x 3 bits = 6 bits -> 1 byte codes, 2 fp16 channels = 4 bytes, one fp32 scale.
  ChannelSubset s{{1, 3}, 3, SubsetScale::kTensor};
  EXPECT_DOUBLE_EQ(subset_cache_bytes(s, kGeom, 10), 10 * (1 + 4) + 4);
  s.scale = SubsetScale::kChannel;
  EXPECT_DOUBLE_EQ(subset_cache_bytes(s, kGeom, 10), 10 * (1 + 4) + 8);
}

TEST(SubsetCache, BadSubsetsAreUsageErrors) {
  EXPECT_THROW(make_subset_cache({{4}, 3, SubsetScale::kTensor}, kGeom), UsageError);
  EXPECT_THROW(make_subset_cache({{2, 1}, 3, SubsetScale::kTensor}, kGeom), UsageError);
  EXPECT_THROW(make_subset_cache({{1, 1}, 3, SubsetScale::kTensor}, kGeom), UsageError);
  EXPECT_THROW(make_subset_cache({{1}, 1, SubsetScale::kTensor}, kGeom), UsageError);
}

TEST(SubsetPolicy, OverridesTheSpecAtItsSiteOnly) {
  KvPolicy p = KvPolicy::parse("int4:token:asym");
  p.set_subset(1, Role::K, {{0, 2}, 3, SubsetScale::kTensor});
  EXPECT_NE(p.subset(1, Role::K), nullptr);
  EXPECT_EQ(p.subset(1, Role::V), nullptr);
  EXPECT_EQ(p.subset(0, Role::K), nullptr);
  EXPECT_FALSE(p.is_baseline());
  EXPECT_EQ(p.name(), "int4:token:asym;layers[1].k=subset(int3:tensor,2ch)");
  // Round trip through the policy file form.
  const nlohmann::json j = p.to_json(2);
  EXPECT_EQ(j["layers"][1]["k"]["channels"], nlohmann::json({0, 2}));
  const KvPolicy q = KvPolicy::from_json(j);
  ASSERT_NE(q.subset(1, Role::K), nullptr);
  EXPECT_EQ(*q.subset(1, Role::K), *p.subset(1, Role::K));
  EXPECT_EQ(q.scheme(0, Role::K), p.scheme(0, Role::K));
}

TEST(PolicyFile, RejectsUnknownKeysShortListsAndBadSubsets) {
  EXPECT_THROW(KvPolicy::from_json({{"spec", "int4"}, {"sepc", 1}}), UsageError);
  const nlohmann::json two = {{"layers", {{{"k", "fp16"}, {"v", "fp16"}}, {{"k", "int4"}, {"v", "int4"}}}}};
  const KvPolicy p = KvPolicy::from_json(two);
  EXPECT_NO_THROW(p.validate(2));
  EXPECT_THROW(p.validate(3), UsageError);  // a short policy is an error, not "16-bit for the rest"
  nlohmann::json extra = two;
  extra["layers"][0]["q"] = "int4";
  EXPECT_THROW(KvPolicy::from_json(extra), UsageError);
  nlohmann::json asym = two;
  asym["layers"][0]["k"] = {{"scheme", "int3:tensor:asym"}, {"channels", {1}}};
  EXPECT_THROW(KvPolicy::from_json(asym), UsageError);
}

}  // namespace
}  // namespace kvaudit::kv
