// kv::scheme_layout: which schemes a device engine stores itself (kv/layout.h), and their sizes.
#include <gtest/gtest.h>

#include "kv/policy.h"
#include "kv/registry.h"

namespace kvaudit::kv {
namespace {

constexpr int kHeads = 4, kHeadDim = 16, kWidth = kHeads * kHeadDim;

// What stays with the host caches (kv/registry.h scheme_layout).
TEST(KvLayout, SchemesWithResidualsRotationsOrOtherBlocksAreNotStoredOnTheDevice) {
  const CacheGeometry g{kHeads, kHeadDim};
  for (const char* s : {"kivi2", "int4:channel", "int4:token:r8", "int4:token+had", "int4@pre", "q4_0", "q8_0"})
    EXPECT_FALSE(scheme_layout(parse_scheme(s), Role::K, g, {Storage::kSimulated}).has_value()) << s;
  EXPECT_TRUE(scheme_layout(parse_scheme("int4@pre"), Role::V, g, {Storage::kSimulated}).has_value());
  EXPECT_FALSE(scheme_layout(parse_scheme("int3:tensor"), Role::K, g, {Storage::kSimulated, true})
                   .has_value());  // --compat paper refits per call
  const KvLayout L = *scheme_layout(parse_scheme("int3:group:g8"), Role::K, g, {Storage::kSimulated});
  EXPECT_EQ(L.row_words(), (kWidth * 3 + 31) / 32);
  EXPECT_EQ(L.row_params(), 2 * kWidth / 8);
}

TEST(KvLayout, PacksCodesLsbFirstAcrossWords) {
  // 3-bit codes 0..7 repeated: code i at bits 3i..3i+2, code 10 spans words 0 and 1.
  uint32_t words[3] = {};
  for (int i = 0; i < 32; ++i) {
    const uint64_t at = uint64_t(i) * 3, code = uint64_t(i % 8);
    words[at / 32] |= uint32_t(code << (at % 32));
    if (at % 32 + 3 > 32) words[at / 32 + 1] |= uint32_t(code >> (32 - at % 32));
  }
  for (int i = 0; i < 32; ++i) EXPECT_EQ(unpack_code(words, i, 3), uint32_t(i % 8)) << i;
}

}  // namespace
}  // namespace kvaudit::kv
