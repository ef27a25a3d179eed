#include "kv/bit_pack.h"

#include <cstring>

namespace kvaudit::kv {

void pack_codes(const uint8_t* codes, int64_t n, int bits, uint8_t* out) {
  if (bits == 8) {
    if (n > 0) std::memcpy(out, codes, size_t(n));  // n == 0 may come with null pointers
    return;
  }
  std::memset(out, 0, size_t(packed_bytes(n, bits)));
  uint64_t acc = 0;
  int have = 0;
  int64_t o = 0;
  for (int64_t i = 0; i < n; ++i) {
    acc |= uint64_t(codes[i] & ((1u << bits) - 1)) << have;
    have += bits;
    while (have >= 8) {
      out[o++] = uint8_t(acc);
      acc >>= 8;
      have -= 8;
    }
  }
  if (have > 0) out[o] = uint8_t(acc);
}

void unpack_codes(const uint8_t* in, int64_t n, int bits, uint8_t* codes) {
  if (bits == 8) {
    if (n > 0) std::memcpy(codes, in, size_t(n));
    return;
  }
  const uint32_t mask = (1u << bits) - 1;
  if (8 % bits == 0) {  // 1, 2, 4 bits: whole codes per byte, a loop the compiler vectorises
    const int per = 8 / bits;
    const int64_t full = n / per;
    for (int64_t b = 0; b < full; ++b)
      for (int k = 0; k < per; ++k) codes[b * per + k] = uint8_t(in[b] >> (k * bits) & mask);
    for (int64_t i = full * per; i < n; ++i) codes[i] = uint8_t(in[full] >> ((i - full * per) * bits) & mask);
    return;
  }
  uint64_t acc = 0;
  int have = 0;
  int64_t o = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (have < bits) {
      acc |= uint64_t(in[o++]) << have;
      have += 8;
    }
    codes[i] = uint8_t(acc & mask);
    acc >>= bits;
    have -= bits;
  }
}

}  // namespace kvaudit::kv
