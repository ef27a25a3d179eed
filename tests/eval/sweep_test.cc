#include "eval/sweep.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace kvaudit::eval {
namespace {

TEST(Sweep, ParseBits) {
  EXPECT_EQ(parse_bits("16,8,6,5,4,3,2"), kDefaultSweepBits);
  EXPECT_EQ(parse_bits("4"), (std::vector<int>{4}));
  EXPECT_THROW(parse_bits("4,,2"), UsageError);
  EXPECT_THROW(parse_bits("0"), UsageError);
  EXPECT_THROW(parse_bits("17"), UsageError);
  EXPECT_THROW(parse_bits("12"), UsageError);  // no family has 9..15-bit codes
  EXPECT_THROW(parse_bits("4,4"), UsageError);  // would run one scheme twice
  EXPECT_EQ(parse_bits("8,16,1"), (std::vector<int>{8, 16, 1}));
  EXPECT_THROW(parse_bits("4x"), UsageError);
  EXPECT_THROW(parse_bits(""), UsageError);
}

TEST(Sweep, SpecPerBits) {
  EXPECT_EQ(sweep_spec("int:token:asym", 4), "int4:token:asym");
  EXPECT_EQ(sweep_spec("int:token:asym", 16), "fp16");
  EXPECT_EQ(sweep_spec("kivi:g32", 2), "kivi2:g32");
  EXPECT_EQ(sweep_spec("nuq", 3), "nuq3");
  EXPECT_THROW(sweep_spec("int4:token", 4), UsageError);
  EXPECT_THROW(sweep_spec("fp8e4m3", 8), UsageError);
}

SweepPoint point(int bits, double ci_low) {
  SweepPoint p;
  p.bits = bits;
  p.metrics.flip_ci_low = ci_low;
  return p;
}

TEST(Sweep, OnsetIsHighestBitsAboveThreshold) {
  // 16 and 8 safe; 4 crosses; 3 and 2 collapse; 5 undefined (no baseline refusals) never counts.
  const std::vector<SweepPoint> pts = {point(16, 0.0), point(8, 0.01), point(5, kNaN),
                                       point(4, 0.06), point(3, 0.4),  point(2, 0.9)};
  EXPECT_EQ(onset_bits(pts, 0.05), std::optional<int>(4));
  EXPECT_EQ(onset_bits(pts, 0.5), std::optional<int>(2));
  EXPECT_EQ(onset_bits(pts, 0.95), std::nullopt);
  EXPECT_EQ(onset_bits({point(4, 0.05)}, 0.05), std::nullopt);  // "exceeds": strictly greater
}

TEST(Sweep, FamilyIsTheInverseOfSweepSpec) {
  for (const std::string spec : {"int3:tensor:sym", "int2:token:asym", "kivi2", "kivi4:g64:r16", "nuq3", "int16:token:asym"}) {
    const auto f = sweep_family(spec);
    ASSERT_TRUE(f.has_value()) << spec;
    EXPECT_EQ(sweep_spec(f->family, f->bits), f->bits == 16 ? "fp16" : spec);
  }
  EXPECT_EQ(sweep_family("int3:tensor:sym")->family, "int:tensor:sym");
  EXPECT_EQ(sweep_family("kivi2")->bits, 2);
  for (const std::string spec : {"fp8e5m2", "q4_0", "fp16", "bf16", "int:token", "int123", "intx3", ""})
    EXPECT_FALSE(sweep_family(spec).has_value()) << spec;
}

}  // namespace
}  // namespace kvaudit::eval
