// Dequantization of every supported ggml type against gguf-py (an independent implementation;
// fixture built by tools/make_io_fixtures.py), plus hand-worked blocks.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/half.h"
#include "io/ggml_quants.h"
#include "io/gguf.h"
#include "io_test_util.h"

namespace kvaudit::io {
namespace {

using testing::expect_usage_error;

// Both sides evaluate the same products of exactly representable factors, so they agree to
// within one float32 rounding of the final subtraction/addition.
constexpr float kDequantRelTol = 1e-6f;
constexpr float kDequantAbsTol = 1e-7f;

const std::string kFixture = std::string(KVAUDIT_FIXTURES) + "/io/dequant_reference.gguf";

class DequantReference : public ::testing::TestWithParam<GgmlType> {};

TEST_P(DequantReference, MatchesGgufPy) {
  const auto file = GgufFile::open(kFixture);
  const std::string name = ggml_type_name(GetParam());
  const GgufTensorInfo* raw = file->find(name + ".raw");
  const GgufTensorInfo* expected = file->find(name + ".expected");
  ASSERT_NE(raw, nullptr) << name;
  ASSERT_NE(expected, nullptr) << name;
  ASSERT_EQ(raw->type, GetParam());
  ASSERT_EQ(expected->type, GgmlType::F32);
  ASSERT_EQ(raw->ne, expected->ne);
  ASSERT_EQ(raw->ne, (std::vector<int64_t>{256, 6}));

  std::vector<float> want(size_t(expected->numel())), got(size_t(raw->numel()));  // [6, 256]
  file->read_f32(name + ".expected", want);
  // Row by row, as the loaders use it, and through TensorSource::read_f32 for the whole tensor.
  const size_t row_bytes = ggml_row_bytes(raw->type, raw->ne[0]);
  for (int64_t r = 0; r < raw->ne[1]; ++r)
    dequantize_row(raw->type, raw->data + r * row_bytes, got.data() + r * raw->ne[0], raw->ne[0]);
  std::vector<float> whole(got.size());
  file->read_f32(name + ".raw", whole);

  int mismatches = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const float tol = kDequantAbsTol + kDequantRelTol * std::fabs(want[i]);
    if (std::fabs(got[i] - want[i]) > tol && ++mismatches <= 5)
      ADD_FAILURE() << name << " element " << i << ": got " << got[i] << ", gguf-py " << want[i];
    ASSERT_EQ(whole[i], got[i]) << name << " element " << i;
  }
  EXPECT_EQ(mismatches, 0) << name;
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DequantReference,
                         ::testing::Values(GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0,
                                           GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                                           GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                                           GgmlType::Q6_K),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

template <typename Block>
std::vector<float> dequant_block(GgmlType t, const Block& blk, int n) {
  std::vector<float> out(static_cast<size_t>(n));
  dequantize_row(t, &blk, out.data(), n);
  return out;
}

TEST(DequantHandWorked, Q8_0ScalesSignedCodes) {
  BlockQ8_0 blk{};
  blk.d = float_to_fp16(0.5f);
  const int8_t codes[] = {-128, -1, 0, 1, 2, 127};
  std::memcpy(blk.qs, codes, sizeof(codes));
  const auto y = dequant_block(GgmlType::Q8_0, blk, kQK);
  EXPECT_EQ(y[0], -64.0f);
  EXPECT_EQ(y[1], -0.5f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 0.5f);
  EXPECT_EQ(y[4], 1.0f);
  EXPECT_EQ(y[5], 63.5f);
}

TEST(DequantHandWorked, Q4_0LowNibblesFirstHalf) {
  BlockQ4_0 blk{};
  blk.d = float_to_fp16(2.0f);
  blk.qs[0] = 0xF0;  // element 0: code 0, element 16: code 15
  blk.qs[1] = 0x98;  // element 1: code 8, element 17: code 9
  const auto y = dequant_block(GgmlType::Q4_0, blk, kQK);
  EXPECT_EQ(y[0], -16.0f);  // (0 - 8) * 2
  EXPECT_EQ(y[16], 14.0f);  // (15 - 8) * 2
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[17], 2.0f);
  EXPECT_EQ(y[2], -16.0f);  // code 0
}

TEST(DequantHandWorked, Q4_1AddsMin) {
  BlockQ4_1 blk{};
  blk.d = float_to_fp16(0.5f);
  blk.m = float_to_fp16(-1.0f);
  blk.qs[0] = 0x3A;
  const auto y = dequant_block(GgmlType::Q4_1, blk, kQK);
  EXPECT_EQ(y[0], 4.0f);   // 10 * 0.5 - 1
  EXPECT_EQ(y[16], 0.5f);  // 3 * 0.5 - 1
  EXPECT_EQ(y[1], -1.0f);  // code 0 -> m
}

TEST(DequantHandWorked, Q5_0FifthBitFromQh) {
  BlockQ5_0 blk{};
  blk.d = float_to_fp16(1.0f);
  blk.qh[0] = 0x01;  // bit 0: element 0
  blk.qh[2] = 0x01;  // bit 16: element 16
  blk.qs[0] = 0x21;
  const auto y = dequant_block(GgmlType::Q5_0, blk, kQK);
  EXPECT_EQ(y[0], 1.0f);    // (1 | 16) - 16
  EXPECT_EQ(y[16], 2.0f);   // (2 | 16) - 16
  EXPECT_EQ(y[1], -16.0f);  // code 0
}

TEST(DequantHandWorked, Q4_KSixBitScaleMinUnpacking) {
  BlockQ4_K blk{};
  blk.d = float_to_fp16(1.0f);
  blk.dmin = float_to_fp16(0.5f);
  blk.scales[0] = 3;     // sub 0 scale
  blk.scales[4] = 2;     // sub 0 min
  blk.scales[1] = 0x80;  // top bits 10 -> high bits of sub 5 scale; sub 1 scale 0
  blk.scales[5] = 0x40;  // top bits 01 -> high bits of sub 5 min; sub 1 min 0
  blk.scales[9] = 0x41;  // sub 5: scale low nibble 1, min low nibble 4
  blk.qs[0] = 0x07;      // element 0 (sub 0): 7; element 32 (sub 1): 0
  blk.qs[64] = 0x90;     // element 160 (sub 5, high nibble): 9; element 128 (sub 4): 0
  const auto y = dequant_block(GgmlType::Q4_K, blk, kQK_K);
  EXPECT_EQ(y[0], 20.0f);     // 1 * 3 * 7 - 0.5 * 2
  EXPECT_EQ(y[1], -1.0f);     // code 0 -> -min
  EXPECT_EQ(y[32], 0.0f);
  EXPECT_EQ(y[160], 287.0f);  // 1 * 33 * 9 - 0.5 * 20
  EXPECT_EQ(y[161], -10.0f);
  EXPECT_EQ(y[128], 0.0f);
}

TEST(DequantHandWorked, Q3_KScalesAndHighMask) {
  BlockQ3_K blk{};
  blk.d = float_to_fp16(1.0f);
  std::memset(blk.hmask, 0xFF, sizeof(blk.hmask));  // set bit: no -4 offset
  blk.hmask[1] = 0x00;
  blk.scales[0] = 0x05;  // scale 0 low bits 5
  blk.scales[8] = 0x02;  // scale 0 high bits 10 -> 5 | 32 - 32 = 5
  blk.scales[5] = 0x70;  // scale 13 low bits 7
  blk.scales[9] = 0xC0;  // scale 13 high bits 11 -> 7 | 48 - 32 = 23
  blk.qs[0] = 0x03;      // element 0: 3
  blk.qs[48] = 0x10;     // element 208 (half 1, group 2, l 16): 1
  const auto y = dequant_block(GgmlType::Q3_K, blk, kQK_K);
  EXPECT_EQ(y[0], 15.0f);    // 5 * 3
  EXPECT_EQ(y[1], -20.0f);   // 5 * (0 - 4)
  EXPECT_EQ(y[208], 23.0f);  // 23 * 1
}

TEST(DequantHandWorked, Q6_KSignedScalesAndHighBits) {
  BlockQ6_K blk{};
  blk.d = float_to_fp16(0.25f);
  blk.scales[0] = 2;
  blk.scales[2] = -3;
  blk.ql[0] = 0x05;
  blk.qh[0] = 0x02;  // element 0 high bits 10; element 32 high bits 00
  blk.ql[32] = 0x0F;
  const auto y = dequant_block(GgmlType::Q6_K, blk, kQK_K);
  EXPECT_EQ(y[0], 2.5f);     // 0.25 * 2 * ((5 | 32) - 32)
  EXPECT_EQ(y[1], -16.0f);   // 0.25 * 2 * (0 - 32)
  EXPECT_EQ(y[32], 12.75f);  // 0.25 * -3 * (15 - 32)
}

TEST(GgmlTraits, SizesMatchTheFormat) {
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_0, 64), 36u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q6_K, 512), 420u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::F16, 3), 6u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::BF16, 5), 10u);
  EXPECT_EQ(ggml_traits(GgmlType::Q8_K).type_size, 292u);
  EXPECT_EQ(uint32_t(GgmlType::BF16), 30u);
  EXPECT_FALSE(ggml_type_traits(4).has_value());  // ids 4 and 5 were removed from ggml
  EXPECT_EQ(ggml_type_traits(12)->type, GgmlType::Q4_K);
}

TEST(GgmlTraits, BadRowsAndUnsupportedTypesThrow) {
  expect_usage_error([] { ggml_row_bytes(GgmlType::Q4_K, 100); }, {"Q4_K", "100"});
  float out[32];
  uint8_t zeros[64] = {};
  expect_usage_error([&] { dequantize_row(GgmlType::IQ4_NL, zeros, out, 32); }, {"IQ4_NL"});
  expect_usage_error([&] { dequantize_row(GgmlType::Q8_1, zeros, out, 32); }, {"Q8_1"});
}

}  // namespace
}  // namespace kvaudit::io
