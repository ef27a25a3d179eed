// The bf16 cache's vector rounding against core/half.h's round_bf16 (nearest even, quiet NaN), bit
// for bit over a sweep of float bit patterns that includes every tie, NaN and infinity.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "kv/policy.h"

namespace kvaudit::kv {
namespace {

TEST(Bf16, CacheRoundsLikeRoundBf16) {
  std::vector<float> x;
  for (uint32_t hi = 0; hi < 0x10000; hi += 7)  // every 7th top half, with low halves around the tie
    for (uint32_t lo : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu})
      x.push_back(std::bit_cast<float>(hi << 16 | lo));
  x.push_back(std::bit_cast<float>(0x7f800000u));  // +inf
  x.push_back(std::bit_cast<float>(0xff800001u));  // a NaN with a low payload only
  while (x.size() % 40) x.push_back(1.0f);
  auto cache = KvPolicy::parse("bf16").make_cache(0, Role::K, {1, 40});
  cache->append(x.data(), int64_t(x.size()) / 40);
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = round_bf16(x[i]);
    ASSERT_EQ(0, std::memcmp(&cache->rows()[i], &want, 4)) << std::hex << std::bit_cast<uint32_t>(x[i]);
  }
}

}  // namespace
}  // namespace kvaudit::kv
