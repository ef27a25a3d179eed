// llama.cpp block types against hand-computed codes, fp16 scales and ggml byte layouts (SPEC.md §3).
#include <gtest/gtest.h>

#include <cstring>

#include <random>

#include <array>
#include <vector>

#include "kv/policy.h"
#include "kv/schemes/llama_cpp.h"

namespace kvaudit::kv {
namespace {

std::vector<uint8_t> block_bytes(SchemeKind k, const std::array<float, 32>& x) {
  std::vector<uint8_t> out(64);
  out.resize(size_t(ggml_block_bytes(k, ggml_quantize_block(k, x.data(), 32), out.data())));
  return out;
}

std::vector<float> roundtrip(const std::string& spec, const std::array<float, 32>& x) {
  auto c = KvPolicy::parse(spec).make_cache(0, Role::K, {1, 32});
  c->append(x.data(), 1);
  return {c->rows(), c->rows() + 32};
}

TEST(LlamaCpp, Q8_0RoundsHalfAwayFromZero) {
  std::array<float, 32> x{};
  x[0] = 127, x[1] = 2.5f, x[2] = -2.5f, x[3] = 0.5f;  // d = 127/127 = 1
  const auto b = block_bytes(SchemeKind::kQ8_0, x);
  ASSERT_EQ(b.size(), 34u);
  EXPECT_EQ(b[0], 0x00);  // fp16 1.0 = 0x3c00, little-endian
  EXPECT_EQ(b[1], 0x3c);
  EXPECT_EQ(b[2], 127);
  EXPECT_EQ(b[3], 3);     // roundf(2.5) = 3 (round half to even would give 2)
  EXPECT_EQ(b[4], 0xfd);  // -3
  EXPECT_EQ(b[5], 1);
  EXPECT_EQ(b[6], 0);
  const auto y = roundtrip("q8_0", x);
  EXPECT_EQ(y[1], 3.0f);
  EXPECT_EQ(y[2], -3.0f);
}

TEST(LlamaCpp, Q8_0ScaleRoundsToFp16) {
  std::array<float, 32> x{};
  for (int j = 0; j < 32; ++j) x[j] = float(j - 16);
  const auto b = block_bytes(SchemeKind::kQ8_0, x);
  // d = 16/127 = 0.125984 -> fp16 0.1259765625 = 0x3008.
  EXPECT_EQ(b[0], 0x08);
  EXPECT_EQ(b[1], 0x30);
  EXPECT_EQ(int8_t(b[2]), -127);     // -16·(127/16)
  EXPECT_EQ(int8_t(b[2 + 17]), 8);   // 1·7.9375 = 7.94 -> 8
  EXPECT_EQ(int8_t(b[2 + 31]), 119);  // 15·7.9375 = 119.06 -> 119
  EXPECT_EQ(roundtrip("q8_0", x)[31], 119 * 0.1259765625f);
}

TEST(LlamaCpp, Q4_0SignedMaxAndTruncation) {
  std::array<float, 32> x{};
  x[0] = -8, x[1] = 1, x[2] = 3, x[3] = 2.5f, x[4] = 0.6f;  // m = -8: d = 1
  x[16] = 7.9f;
  const auto b = block_bytes(SchemeKind::kQ4_0, x);
  ASSERT_EQ(b.size(), 18u);
  EXPECT_EQ(b[1], 0x3c);
  // codes: min(15, (int)(x + 8.5)): 0, 9, 11, 11, 9, 8...; x[16] = 7.9 -> 16.4 -> 15.
  EXPECT_EQ(b[2], 0 | 15 << 4);
  EXPECT_EQ(b[3], 9 | 8 << 4);
  EXPECT_EQ(b[4], 11 | 8 << 4);
  EXPECT_EQ(b[5], 11 | 8 << 4);
  EXPECT_EQ(b[6], 9 | 8 << 4);
  const auto y = roundtrip("q4_0", x);
  EXPECT_EQ((std::vector<float>(y.begin(), y.begin() + 5)), (std::vector<float>{-8, 1, 3, 3, 1}));
  EXPECT_EQ(y[16], 7.0f);
  // A positive extreme gives d = -1: 8 -> (int)(0.5) = 0 -> (0-8)·-1 = 8; -8 -> 16.5 -> 15 -> -7.
  std::array<float, 32> z{};
  z[0] = 8, z[1] = -8;
  const auto yz = roundtrip("q4_0", z);
  EXPECT_EQ(yz[0], 8.0f);
  EXPECT_EQ(yz[1], -7.0f);
}

TEST(LlamaCpp, Q4_1AndQ5_1MinScale) {
  std::array<float, 32> x{};
  for (int j = 0; j < 16; ++j) x[j] = float(j);
  for (int j = 16; j < 32; ++j) x[j] = float(31 - j);
  x[1] = 1.5f;  // (int)(1.5 + 0.5) = 2
  const auto b = block_bytes(SchemeKind::kQ4_1, x);
  ASSERT_EQ(b.size(), 20u);
  EXPECT_EQ(b[1], 0x3c);  // d = 15/15
  EXPECT_EQ(b[2], 0x00);  // m = 0
  EXPECT_EQ(b[3], 0x00);
  EXPECT_EQ(b[4], 0 | 15 << 4);
  EXPECT_EQ(b[5], 2 | 14 << 4);
  EXPECT_EQ(roundtrip("q4_1", x)[1], 2.0f);

  std::array<float, 32> y{};
  for (int j = 0; j < 32; ++j) y[j] = float(j) + 0.25f;  // min 0.25, d = 31/31 = 1
  const auto b5 = block_bytes(SchemeKind::kQ5_1, y);
  ASSERT_EQ(b5.size(), 24u);
  EXPECT_EQ(b5[2], 0x00);  // fp16 0.25 = 0x3400
  EXPECT_EQ(b5[3], 0x34);
  EXPECT_EQ(b5[4] | b5[5] << 8 | b5[6] << 16 | uint32_t(b5[7]) << 24, 0xffff0000u);  // fifth bit of codes 16..31
  EXPECT_EQ(b5[8 + 3], 3 | 3 << 4);
  EXPECT_EQ(roundtrip("q5_1", y)[31], 31.25f);
}

TEST(LlamaCpp, Q5_0) {
  std::array<float, 32> x{};
  x[0] = -16, x[1] = 3.5f;  // d = -16/-16 = 1; codes min(31, (int)(x + 16.5)): 0, 20, 16...
  const auto b = block_bytes(SchemeKind::kQ5_0, x);
  ASSERT_EQ(b.size(), 22u);
  EXPECT_EQ(b[2] | b[3] << 8 | b[4] << 16 | uint32_t(b[5]) << 24, 0xfffffffeu);
  EXPECT_EQ(b[6], 0);
  EXPECT_EQ(b[7], 4);  // 20 & 15
  const auto y = roundtrip("q5_0", x);
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[1], 4.0f);  // (20 - 16)·1
  EXPECT_EQ(y[2], 0.0f);
}

TEST(LlamaCpp, Iq4NlTableAndLeastSquaresScale) {
  std::array<float, 32> x{};
  x[0] = 127, x[1] = 4.5f;  // d0 = 127/-127 = -1: x/d0 = -127 -> entry 0; -4.5 is the midpoint of -10 and 1 -> 1 (up)
  const GgmlBlock b = ggml_quantize_block(SchemeKind::kIq4Nl, x.data(), 32);
  EXPECT_EQ(b.codes[0], 0);
  EXPECT_EQ(b.codes[1], 8);
  EXPECT_EQ(b.codes[2], 8);  // 0 -> nearest entry 1
  // d = Σ x²·v·x / Σ x²·v² over the two nonzero values.
  // = (127²·-127·127 + 4.5²·1·4.5) / (127²·127² + 4.5²) = -0.9999996, which rounds to fp16 -1.0.
  EXPECT_EQ(b.d, -1.0f);
  const auto y = roundtrip("iq4_nl", x);
  EXPECT_EQ(y[0], 127.0f);
  EXPECT_EQ(y[1], -1.0f);
  EXPECT_EQ(y[2], -1.0f);  // iq4_nl has no zero level
}

// The vectorised q8_0/q4_0 rows of the simulated cache against the reference block formulas, bit
// for bit: ties (x·(1/d) = k + 1/2 with d = 1), equal magnitudes of both signs (the first wins),
// all-zero blocks, -0, subnormals, NaN, infinities and a short last block.
TEST(LlamaCpp, FastRowsEqualReference) {
  constexpr int kWidth = 32 * 40 + 20;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(kWidth);
  for (auto& v : x) v = nd(rng);
  for (int j = 0; j < 31; ++j) x[size_t(j)] = float(j % 2 ? -j : j) + 0.5f;  // with 127 below: q8_0 d = 1, ties
  x[31] = 127.0f;
  x[0 + 32] = 8.0f, x[5 + 32] = -8.0f;                                      // equal |x|, first wins
  for (int j = 64; j < 96; ++j) x[size_t(j)] = j % 3 ? 0.0f : -0.0f;         // an all-zero block
  for (int j = 96; j < 128; ++j) x[size_t(j)] = 1e-44f * float(j - 100);    // subnormals
  x[130] = NAN, x[170] = INFINITY, x[200] = -INFINITY;
  for (int j = 224; j < 256; ++j) x[size_t(j)] = float(j - 240) * 0.125f;  // q4_0: x·(1/d) + 8.5 integral
  for (SchemeKind kind : {SchemeKind::kQ8_0, SchemeKind::kQ4_0, SchemeKind::kQ4_1, SchemeKind::kQ5_0}) {
    std::vector<float> fast(kWidth);
    ggml_quantize_dequantize_row(kind, x.data(), kWidth, fast.data());
    for (int c0 = 0; c0 < kWidth; c0 += kGgmlBlock) {
      const int n = std::min(kGgmlBlock, kWidth - c0);
      const GgmlBlock b = ggml_quantize_block(kind, x.data() + c0, n);
      for (int j = 0; j < n; ++j) {
        const float want = ggml_dequantize(kind, b.codes[size_t(j)], b.d, b.m);
        ASSERT_EQ(0, std::memcmp(&fast[size_t(c0 + j)], &want, sizeof(float)))
            << int(kind) << " channel " << c0 + j << ": " << fast[size_t(c0 + j)] << " vs " << want;
      }
    }
  }
}

}  // namespace
}  // namespace kvaudit::kv
