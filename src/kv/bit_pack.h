// Packed storage of codes: `bits` bits per code, little-endian bit order (code i occupies bits
// [i·bits, (i+1)·bits) of the byte stream).
#pragma once
#include <cstdint>

namespace kvaudit::kv {

inline int64_t packed_bytes(int64_t n_codes, int bits) { return (n_codes * bits + 7) / 8; }
// codes: [n], each < 2^bits -> out: [packed_bytes(n, bits)]
void pack_codes(const uint8_t* codes, int64_t n, int bits, uint8_t* out);
// in: [packed_bytes(n, bits)] -> codes: [n]
void unpack_codes(const uint8_t* in, int64_t n, int bits, uint8_t* codes);

}  // namespace kvaudit::kv
