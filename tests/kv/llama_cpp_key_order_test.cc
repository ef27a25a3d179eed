// llama.cpp block types on keys of "normal"-RoPE models (llama, mistral) form their blocks of 32 in
// llama.cpp's channel order: per head of D, position p holds HF channel (p % 2)·D/2 + p/2
// (kv/schemes/llama_cpp.h, issue 9 item 8). Values and "neox" models keep blocks of consecutive
// HF channels.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "core/half.h"
#include "kv/policy.h"
#include "kv/schemes/llama_cpp.h"

namespace kvaudit::kv {
namespace {

constexpr SchemeKind kKinds[] = {SchemeKind::kQ8_0, SchemeKind::kQ4_0, SchemeKind::kQ4_1,
                                 SchemeKind::kQ5_0, SchemeKind::kQ5_1, SchemeKind::kIq4Nl};

std::vector<float> cache_row(const std::string& spec, Role role, CacheGeometry g, const std::vector<float>& x,
                             Storage storage = Storage::kSimulated) {
  KvPolicy p = KvPolicy::parse(spec);
  p.set_storage(storage);
  auto c = p.make_cache(0, role, g);
  c->append(x.data(), 1);
  return {c->rows(), c->rows() + g.width()};
}

TEST(LlamaCppKeyOrder, HandComputedPositions) {
  // Two heads of 64: llama.cpp position 2i holds HF channel i, 2i+1 holds 32+i, per head.
  const std::vector<int> o = llama_cpp_key_order({2, 64, true});
  ASSERT_EQ(o.size(), 128u);
  EXPECT_EQ((std::vector<int>(o.begin(), o.begin() + 6)), (std::vector<int>{0, 32, 1, 33, 2, 34}));
  EXPECT_EQ(o[30], 15);
  EXPECT_EQ(o[31], 47);
  EXPECT_EQ(o[32], 16);
  EXPECT_EQ(o[63], 63);
  EXPECT_EQ(o[64], 64);
  EXPECT_EQ(o[65], 96);
  // Block 0 of each head = HF channels {0-15, 32-47}; block 1 = {16-31, 48-63}.
  std::set<int> b0(o.begin(), o.begin() + 32), want;
  for (int c = 0; c < 16; ++c) want.insert({c, 32 + c});
  EXPECT_EQ(b0, want);
  std::set<int> b3(o.begin() + 96, o.begin() + 128), want3;
  for (int c = 16; c < 32; ++c) want3.insert({64 + c, 96 + c});
  EXPECT_EQ(b3, want3);
  // head_dim 128 (Llama 3): block 0 = {0-15, 64-79}.
  const std::vector<int> o128 = llama_cpp_key_order({1, 128, true});
  EXPECT_EQ(o128[1], 64);
  EXPECT_EQ(o128[31], 79);
  // Without the flag: the identity.
  const std::vector<int> id = llama_cpp_key_order({2, 64, false});
  for (int c = 0; c < 128; ++c) ASSERT_EQ(id[size_t(c)], c);
}

// One head of 64: channels {0-15, 32-47} hold 1, the others 100. In llama.cpp's order block 0 is
// all ones (q8_0: d = fp16(1/127), code 127) and block 1 all hundreds; in HF order each block mixes
// both, so the ones are coded with d = fp16(100/127): round(1.27) = 1 -> 0.787.
TEST(LlamaCppKeyOrder, BlockMembershipInCache) {
  std::vector<float> x(64, 100.0f);
  for (int c = 0; c < 16; ++c) x[size_t(c)] = x[size_t(32 + c)] = 1.0f;
  const float one = 127.0f * round_fp16(1.0f / 127.0f), hundred = 127.0f * round_fp16(100.0f / 127.0f);
  const float mixed = round_fp16(100.0f / 127.0f);  // code 1 of a block whose max is 100
  const CacheGeometry llama{1, 64, true}, neox{1, 64, false};
  const auto k = cache_row("q8_0", Role::K, llama, x);
  for (int c = 0; c < 64; ++c) EXPECT_EQ(k[size_t(c)], x[size_t(c)] == 1.0f ? one : hundred) << c;
  for (const auto& y : {cache_row("q8_0", Role::V, llama, x), cache_row("q8_0", Role::K, neox, x)}) {
    EXPECT_EQ(y[0], mixed);
    EXPECT_EQ(y[32], mixed);
    EXPECT_EQ(y[16], hundred);
  }
}

// Every llama.cpp type: the key cache == permute into llama.cpp's order -> reference block
// quantization (ggml_quantize_block / ggml_dequantize on consecutive 32s) -> un-permute, bit for bit,
// in both storages. The row has ties of |x| with both signs inside a llama.cpp block (q4_0/q5_0/
// iq4_nl: the first in llama.cpp's order wins) and three heads of 96 (blocks cross the halves).
TEST(LlamaCppKeyOrder, EqualsPermuteQuantizeUnpermute) {
  for (const CacheGeometry g : {CacheGeometry{2, 64, true}, CacheGeometry{1, 96, true}, CacheGeometry{4, 32, true}}) {
    const int w = g.width();
    std::mt19937 rng(7 + w);
    std::normal_distribution<float> nd(0.0f, 1.5f);
    std::vector<float> x(static_cast<size_t>(w));
    for (float& v : x) v = nd(rng);
    x[size_t(g.head_dim / 2)] = -9.0f;  // llama.cpp position 1 (HF: position D/2 + ... in the second half)
    x[1] = 9.0f;                         // llama.cpp position 2: HF order puts it first
    const std::vector<int> order = llama_cpp_key_order(g);
    for (SchemeKind kind : kKinds) {
      std::vector<float> xp(static_cast<size_t>(w)), want(static_cast<size_t>(w));
      for (int p = 0; p < w; ++p) xp[size_t(p)] = x[size_t(order[size_t(p)])];
      for (int c0 = 0; c0 < w; c0 += kGgmlBlock) {
        const GgmlBlock b = ggml_quantize_block(kind, xp.data() + c0, kGgmlBlock);
        for (int j = 0; j < kGgmlBlock; ++j)
          want[size_t(order[size_t(c0 + j)])] = ggml_dequantize(kind, b.codes[size_t(j)], b.d, b.m);
      }
      const std::string spec = to_string(SchemeSpec{.kind = kind});
      for (Storage st : {Storage::kSimulated, Storage::kPacked}) {
        const auto got = cache_row(spec, Role::K, g, x, st);
        ASSERT_EQ(0, std::memcmp(got.data(), want.data(), sizeof(float) * size_t(w)))
            << spec << " width " << w << " storage " << int(st);
      }
      // The order matters: in HF order the result differs (else this test could not fail). With
      // head_dim 32 a block is a whole head in either order; only the first-wins tie of q4_0, q5_0
      // and iq4_nl tells the orders apart there.
      CacheGeometry hf = g;
      hf.llama_cpp_pairs_adjacent = false;
      const bool first_wins = kind == SchemeKind::kQ4_0 || kind == SchemeKind::kQ5_0 || kind == SchemeKind::kIq4Nl;
      if (g.head_dim > kGgmlBlock || first_wins) {
        EXPECT_NE(0, std::memcmp(cache_row(spec, Role::K, hf, x).data(), want.data(), sizeof(float) * size_t(w))) << spec;
      }
    }
  }
}

// A tie of |x| decides q4_0's scale sign: in llama.cpp's order +9 (HF channel 1, position 2) comes
// after -9 (HF channel D/2 = 32, position 1) in block 0, so m = -9 and d = 9/8.
TEST(LlamaCppKeyOrder, Q4_0TieFollowsLlamaCppOrder) {
  std::vector<float> x(64, 0.0f);
  x[32] = -9.0f;
  x[1] = 9.0f;
  const auto k = cache_row("q4_0", Role::K, {1, 64, true}, x);
  // d = 9/8 = 1.125: -9 -> code (int)(-8 + 8.5) = 0 -> -9; +9 -> (int)(8 + 8.5) = 16 -> 15 -> 7.875
  EXPECT_EQ(k[32], -9.0f);
  EXPECT_EQ(k[1], 7.875f);
  // HF order: +9 and -9 fall in blocks 0 and 1, each its block's extreme, both kept exactly.
  const auto v = cache_row("q4_0", Role::K, {1, 64, false}, x);
  EXPECT_EQ(v[1], 9.0f);
  EXPECT_EQ(v[32], -9.0f);
}

}  // namespace
}  // namespace kvaudit::kv
