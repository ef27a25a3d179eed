// Bytes per token against hand-worked numbers (SPEC.md §3 Memory; convention in kv/memory.h).
#include <gtest/gtest.h>

#include "kv/memory.h"
#include "core/error.h"
#include "kv/policy.h"

namespace kvaudit::kv {
namespace {

constexpr CacheGeometry kSmolLM2{3, 64};     // SmolLM2-135M: 3 KV heads x 64
constexpr CacheGeometry kLlama31_8B{8, 128};  // Llama-3.1-8B: 8 KV heads x 128
constexpr int64_t kContext = 4096;

double bpt(const char* spec, Role r, CacheGeometry g) {
  return bytes_per_token(KvPolicy::parse(spec).scheme(0, r), r, g, kContext);
}

TEST(Memory, Kivi2G32R32) {
  // SmolLM2 K: 4096 tokens = 128 full blocks: codes 192·2/8 = 48 B/token + per block 192 channels x
  // (s, z) x 4 B (fp32) = 1536 B / 32 tokens = 48 B/token.
  EXPECT_EQ(bpt("kivi2", Role::K, kSmolLM2), 96.0);
  // V: 4064 quantized tokens x (48 + 6 groups x 8 B) + 32 residual tokens x 192 x 2 B, over 4096.
  EXPECT_EQ(bpt("kivi2", Role::V, kSmolLM2), (4064.0 * 96 + 32 * 192 * 2) / 4096);
  // Llama-3.1-8B K: 1024·2/8 = 256 + 1024 x 8 / 32 = 256 -> 512; V: 4064 x (256 + 32 x 8) + 32 x 2048.
  EXPECT_EQ(bpt("kivi2", Role::K, kLlama31_8B), 512.0);
  EXPECT_EQ(bpt("kivi2", Role::V, kLlama31_8B), (4064.0 * 512 + 32 * 2048) / 4096);
}

TEST(Memory, OtherSchemesByHand) {
  EXPECT_EQ(bpt("fp16", Role::K, kSmolLM2), 384.0);
  EXPECT_EQ(bpt("int4:token:asym", Role::K, kSmolLM2), 96.0 + 8);
  EXPECT_EQ(bpt("int4:head:sym", Role::K, kLlama31_8B), 512.0 + 8 * 4);
  EXPECT_EQ(bpt("int3:tensor:sym", Role::K, kSmolLM2), 72.0 + 4.0 / 4096);
  EXPECT_EQ(bpt("fp8e4m3", Role::V, kSmolLM2), 192.0);
  EXPECT_EQ(bpt("fp8e5m2:scale=dynamic", Role::V, kSmolLM2), 196.0);
  EXPECT_EQ(bpt("q8_0", Role::K, kLlama31_8B), 1024.0 / 32 * 34);  // ggml block_q8_0: 34 B per 32
  EXPECT_EQ(bpt("q4_0", Role::K, kLlama31_8B), 1024.0 / 32 * 18);
  EXPECT_EQ(bpt("q4_1", Role::K, kLlama31_8B), 1024.0 / 32 * 20);
  EXPECT_EQ(bpt("q5_0", Role::K, kLlama31_8B), 1024.0 / 32 * 22);
  EXPECT_EQ(bpt("q5_1", Role::K, kLlama31_8B), 1024.0 / 32 * 24);
  EXPECT_EQ(bpt("iq4_nl", Role::K, kLlama31_8B), 1024.0 / 32 * 18);
  // +protect=5% of 192 -> 10 channels in fp16, 182 in int4 (91 B) with one fp32 (s, z).
  EXPECT_EQ(bpt("int4:token+protect=5%", Role::K, kSmolLM2), 91.0 + 8 + 20);
}

}  // namespace
}  // namespace kvaudit::kv
