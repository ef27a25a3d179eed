// Channel blocks fed straight from the input (a prefill through the residual) take each channel's
// range over the raw values and round it through fp16 afterwards (quant_cache.cc quantize_block):
// equal to the range of the fp16-rounded values except where a zero's sign or a NaN could differ,
// which are recomputed. Checked against streaming (rows staged in fp16 first, the range taken on
// the rounded values) and the packed cache, bit for bit, on channels built for those cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kv/policy.h"

namespace kvaudit::kv {
namespace {

constexpr CacheGeometry kGeom{2, 10};  // width 20: two vectors and a scalar tail of 4
constexpr int64_t kRows = 200;

// [kRows, width]: channel c follows pattern c % 6.
std::vector<float> special_rows() {
  const int w = kGeom.width();
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(kRows) * w);
  for (int64_t r = 0; r < kRows; ++r)
    for (int c = 0; c < w; ++c) {
      const float g = nd(rng);
      float v = g;
      switch (c % 6) {
        case 0: v = g > 0 ? 1e-9f : -1e-9f; break;                 // every value rounds to +0 or -0 in fp16
        case 1: v = r % 32 == 0 ? NAN : g; break;                  // NaN first in every block
        case 2: v = r % 32 == 7 ? NAN : g; break;                  // NaN inside blocks
        case 3: v = g > 0 ? std::fabs(g) : (r % 2 ? 0.0f : -3e-8f); break;  // min a zero of either sign
        case 4: v = g * 50000.0f; break;                           // beyond fp16: rounds to inf
        default: break;                                            // plain values
      }
      x[size_t(r) * w + c] = v;
    }
  return x;
}

bool bit_equal(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

TEST(ChannelRange, PrefillFromInputEqualsStreamingAndPackedOnZerosNaNInf) {
  const int w = kGeom.width();
  const auto x = special_rows();
  for (const char* spec : {"kivi2", "int2:channel:g32:r32", "int4:channel:g8:r16:sym", "kivi4:g16:r48"}) {
    auto one = KvPolicy::parse(spec).make_cache(0, Role::K, kGeom);
    auto stream = KvPolicy::parse(spec).make_cache(0, Role::K, kGeom);
    KvPolicy pk_policy = KvPolicy::parse(spec);
    pk_policy.set_storage(Storage::kPacked);
    auto pk = pk_policy.make_cache(0, Role::K, kGeom);
    one->append(x.data(), kRows);
    pk->append(x.data(), kRows);
    for (int64_t t = 0; t < kRows; ++t) stream->append(&x[size_t(t) * w], 1);
    EXPECT_TRUE(bit_equal(one->rows(), stream->rows(), x.size())) << spec;
    EXPECT_TRUE(bit_equal(one->rows(), pk->rows(), x.size())) << spec;
    // The plain channel (c % 6 == 5) was quantized: its values changed.
    int changed = 0;
    for (int64_t t = 0; t < 64; ++t) changed += one->rows()[size_t(t) * w + 5] != x[size_t(t) * w + 5];
    EXPECT_GT(changed, 32) << spec;
  }
}

}  // namespace
}  // namespace kvaudit::kv
