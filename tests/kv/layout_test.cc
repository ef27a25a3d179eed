// kv::scheme_layout: which schemes a device engine stores itself (kv/layout.h), and their sizes.
#include <gtest/gtest.h>

#include <string>

#include "layout_reference.h"
#include "kv/policy.h"
#include "kv/registry.h"
#include "kv/schemes/llama_cpp.h"

namespace kvaudit::kv {
namespace {

using testing::kHeadDim;
using testing::kHeads;
using testing::kWidth;

// What stays with the host caches (kv/registry.h scheme_layout).
TEST(KvLayout, RotationsProtectionPreRopeKeysAndCodebooksAreNotStoredOnTheDevice) {
  const CacheGeometry g{kHeads, kHeadDim};
  for (const char* s : {"int4:token+had", "kivi2+had", "int4@pre", "nuq4", "int4:tensor:r8"})
    EXPECT_FALSE(scheme_layout(parse_scheme(s), Role::K, g, {Storage::kSimulated}).has_value()) << s;
  EXPECT_TRUE(scheme_layout(parse_scheme("int4@pre"), Role::V, g, {Storage::kSimulated}).has_value());
  for (const char* s : {"int3:tensor", "kivi2"})  // --compat paper refits per call
    EXPECT_FALSE(scheme_layout(parse_scheme(s), Role::K, g, {Storage::kSimulated, true}).has_value()) << s;
  const KvLayout L = *scheme_layout(parse_scheme("int3:group:g8"), Role::K, g, {Storage::kSimulated});
  EXPECT_EQ(L.row_words(), (kWidth * 3 + 31) / 32);
  EXPECT_EQ(L.row_params(), 2 * kWidth / 8);
}

TEST(KvLayout, KiviKeysAreChannelBlocksAndValuesGroupsBothWithAWindow) {
  const CacheGeometry g{kHeads, kHeadDim};
  const KvLayout k = *scheme_layout(parse_scheme("kivi2:g4:r8"), Role::K, g, {Storage::kSimulated});
  const KvLayout v = *scheme_layout(parse_scheme("kivi2:g4:r8"), Role::V, g, {Storage::kSimulated});
  EXPECT_TRUE(k.channel());
  EXPECT_EQ(k.block_rows, 4);
  EXPECT_EQ(k.block_params(), 2 * kWidth);
  EXPECT_EQ(k.row_params(), 0);
  EXPECT_FALSE(v.channel());
  EXPECT_EQ(v.set_len, 4);
  // SPEC.md §3 streaming: channel quantizes whole windows of R rows; token-wise all but the newest R.
  EXPECT_EQ(k.quantized_rows(7), 0);
  EXPECT_EQ(k.quantized_rows(8), 8);
  EXPECT_EQ(k.quantized_rows(23), 16);
  EXPECT_EQ(v.quantized_rows(7), 0);
  EXPECT_EQ(v.quantized_rows(23), 15);
}

// llama.cpp's interleaved key order (llama_cpp_key_order) as the device layout addresses it.
TEST(KvLayout, GgmlKeyPositionsFollowLlamaCppOrder) {
  const CacheGeometry g{kHeads, kHeadDim, true};
  const KvLayout k = *scheme_layout(parse_scheme("q4_0"), Role::K, g, {Storage::kSimulated});
  const KvLayout v = *scheme_layout(parse_scheme("q4_0"), Role::V, g, {Storage::kSimulated});
  EXPECT_EQ(v.pair_dim, 0);
  const std::vector<int> order = llama_cpp_key_order(g);
  for (int p = 0; p < kWidth; ++p) {
    EXPECT_EQ(k.channel_at(p), order[size_t(p)]) << p;
    EXPECT_EQ(k.position(order[size_t(p)]), p) << p;
    EXPECT_EQ(v.channel_at(p), p);
  }
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
  const CacheGeometry g{kHeads, kHeadDim, true};  // llama.cpp blocks: keys in its interleaved order
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
                         [](const auto& info) { return testing::test_name(info.param); });

// The identities engine/cuda/kv_decode8.cuh's fast decoders rest on, over every code: an integer code
// q as bits_float(0x4B000000 | q) - 2^23, so (q - zc)·s is ((2^23 + q) - (2^23 + zc))·s bit for bit
// (int, q8_0 through q ^ 0x80, q4_0, q4_1); every fp8 value is an fp16 (e5m2: the fp16 whose upper
// byte is the code). The device side is bound by KvWriteCuda.AttentionReadsTheDecodedRows.
TEST(KvLayout, TheFastDecodersIdentitiesHoldForEveryCode) {
  const float scales[] = {0.0f, 1e-8f, 0.0123f, 0.5f, 1.0f, 3.75f, 1e30f, 3.40282347e+38f, 1e-40f};
  const auto magic = [](uint32_t q) { return bits_float(0x4B000000u | q) - 8388608.0f; };
  for (const int bits : {1, 2, 4, 8})
    for (uint32_t q = 0; q < (1u << bits); ++q)
      for (int zc = 0; zc <= (1 << bits); ++zc)
        for (const float s : scales) {
          const float fast = (bits_float(0x4B000000u | q) - (8388608.0f + float(zc))) * s;
          ASSERT_EQ(float_bits(fast), float_bits(affine_value(uint8_t(q), zc, s))) << bits << " " << q << " " << zc;
        }
  for (uint32_t q = 0; q < 256; ++q)
    for (const float d : scales) {
      const float q8 = (bits_float(0x4B000000u | (q ^ 0x80u)) - (8388608.0f + 128.0f)) * d;
      ASSERT_EQ(float_bits(q8), float_bits(ggml_dequantize(io::GgmlType::Q8_0, uint8_t(q), d, 0))) << q;
      if (q >= 16) continue;
      const float q4 = (bits_float(0x4B000000u | q) - (8388608.0f + 8.0f)) * d;
      ASSERT_EQ(float_bits(q4), float_bits(ggml_dequantize(io::GgmlType::Q4_0, uint8_t(q), d, 0))) << q;
      for (const float m : {0.0f, -0.0f, -2.5f, 1e-3f}) {
        const float q41 = add_rn(mul_rn(magic(q), d), m);  // magic(q) is float(q)
        ASSERT_EQ(float_bits(q41), float_bits(ggml_dequantize(io::GgmlType::Q4_1, uint8_t(q), d, m))) << q;
      }
    }
  for (const bool e5m2 : {false, true})
    for (uint32_t c = 0; c < 256; ++c) {
      const float v = fp8_decode(uint8_t(c), fp8_format(e5m2));
      if (v != v) continue;  // NaN: a NaN either way (payloads may differ)
      EXPECT_EQ(float_bits(fp16_to_float(float_to_fp16(v))), float_bits(v)) << "fp8 code " << c << " not an fp16";
      if (e5m2) {
        EXPECT_EQ(float_bits(fp16_to_float(uint16_t(c << 8))), float_bits(v)) << "e5m2 code " << c;
      }
    }
}

}  // namespace
}  // namespace kvaudit::kv
