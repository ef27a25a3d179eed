// Bit packing of codes (kv/bit_pack.h): the documented little-endian layout, and pack/unpack round
// trips for every width and length (the 1/2/4-bit unpack has its own per-byte loop).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kv/bit_pack.h"

namespace kvaudit::kv {
namespace {

TEST(BitPack, LittleEndianLayout) {
  const uint8_t two[] = {1, 2, 3, 0, 3};  // code i at bits [2i, 2i+2)
  uint8_t out[2] = {};
  pack_codes(two, 5, 2, out);
  EXPECT_EQ(out[0], 0b00111001);
  EXPECT_EQ(out[1], 0b00000011);
  const uint8_t three[] = {5, 7, 1};  // 101, 111, 001 -> bits 0-8: 1 0 1 1 1 1 1 0 0
  pack_codes(three, 3, 3, out);
  EXPECT_EQ(out[0], 0b01111101);
  EXPECT_EQ(out[1], 0b00000000);
}

TEST(BitPack, RoundTripsEveryWidthAndLength) {
  std::mt19937 rng(3);
  for (int bits = 1; bits <= 8; ++bits)
    for (int64_t n = 0; n <= 70; ++n) {
      std::vector<uint8_t> codes(static_cast<size_t>(n)), back(static_cast<size_t>(n), 0xff);
      for (auto& c : codes) c = uint8_t(rng() & ((1u << bits) - 1));
      std::vector<uint8_t> packed(size_t(packed_bytes(n, bits)) + 1, 0xee);
      pack_codes(codes.data(), n, bits, packed.data());
      EXPECT_EQ(packed.back(), 0xee) << "wrote past packed_bytes, bits " << bits << " n " << n;
      unpack_codes(packed.data(), n, bits, back.data());
      ASSERT_EQ(back, codes) << "bits " << bits << " n " << n;
    }
}

}  // namespace
}  // namespace kvaudit::kv
