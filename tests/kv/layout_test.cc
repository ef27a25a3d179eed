// kv::scheme_layout: which schemes a device engine stores itself (kv/layout.h), and their sizes.
#include <gtest/gtest.h>

#include <string>

#include "layout_reference.h"
#include "kv/policy.h"
#include "kv/registry.h"

namespace kvaudit::kv {
namespace {

using testing::kHeadDim;
using testing::kHeads;
using testing::kWidth;

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

class KvLayoutRows : public ::testing::TestWithParam<const char*> {};

// On the CPU alone: the CPU quantizers' codes and parameters, packed as the device stores them and
// read back through kv_value (what CUDA attention reads), are the CPU cache's rows() bit for bit, in
// both storages; a 6-row prefill then one row, as an engine appends them.
TEST_P(KvLayoutRows, PackedCpuCodesReadBackAsTheCacheRows) {
  const CacheGeometry g{kHeads, kHeadDim};
  const SchemeSpec spec = parse_scheme(GetParam());
  for (const Role role : {Role::K, Role::V}) {
    const KvLayout L = *scheme_layout(spec, role, g, {Storage::kSimulated});
    const std::vector<float> x = testing::test_rows(7, 3);
    const AffineParams tensor = L.tensor ? IntAffine{L.bits, L.sym}.fit(x.data(), 6 * kWidth) : AffineParams{};
    const float triple[3] = {tensor.scale, tensor.zero, tensor.qscale};
    for (const Storage st : {Storage::kSimulated, Storage::kPacked}) {
      auto cache = make_scheme_cache(spec, role, g, {st});
      cache->append(x.data(), 6);
      cache->append(x.data() + 6 * kWidth, 1);
      for (int64_t t = 0; t < 7; ++t) {
        const testing::CpuRow row = testing::cpu_row(L, x.data() + t * kWidth, tensor);
        const std::vector<uint32_t> words = testing::pack_row(L, row.codes);
        for (int c = 0; c < kWidth; ++c) {
          EXPECT_EQ(unpack_code(words.data(), c, L.bits), row.codes[size_t(c)]);
          const float got = kv_value(L, words.data(), L.tensor ? triple : row.params.data(), c);
          ASSERT_EQ(float_bits(got), float_bits(cache->rows()[t * kWidth + c]))
              << GetParam() << " row " << t << " channel " << c;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Schemes, KvLayoutRows, ::testing::ValuesIn(testing::layout_schemes()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace kvaudit::kv
