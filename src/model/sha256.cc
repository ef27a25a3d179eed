// SHA-256 as FIPS 180-4 §6.2 defines it.
#include "model/sha256.h"

#include <cpuid.h>
#include <immintrin.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include <fmt/format.h>

#include "core/error.h"

namespace kvaudit::model {

namespace {

constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// FIPS 180-4 §6.2.2 on one block, portable.
void compress_portable(uint32_t h_[8], const uint8_t* p) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i)
    w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; ++i) {
    const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int i = 0; i < 64; ++i) {
    const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
    const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h_[0] += a; h_[1] += b; h_[2] += c; h_[3] += d;
  h_[4] += e; h_[5] += f; h_[6] += g; h_[7] += h;
}

// The same with the x86 SHA extensions (hashing a multi-GB model is otherwise seconds per GB).
// sha256rnds2 keeps the state as two registers, (a, b, e, f) and (c, d, g, h) from the high lane
// down; sha256msg1/msg2 compute the message schedule four words at a time.
__attribute__((target("sha"))) void compress_shani(uint32_t h_[8], const uint8_t* p, size_t n_blocks) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i abcd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h_));      // lanes a b c d
  __m128i efgh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h_ + 4));  // lanes e f g h
  abcd = _mm_shuffle_epi32(abcd, 0xB1);                                     // b a d c
  efgh = _mm_shuffle_epi32(efgh, 0x1B);                                     // h g f e
  __m128i abef = _mm_alignr_epi8(abcd, efgh, 8);                            // f e b a
  __m128i cdgh = _mm_blend_epi16(efgh, abcd, 0xF0);                         // h g d c
  for (; n_blocks > 0; --n_blocks, p += 64) {
    const __m128i abef_in = abef, cdgh_in = cdgh;
    __m128i msg[16];  // msg[i] = W[4i .. 4i+3]
    for (int i = 0; i < 16; ++i) {
      if (i < 4) {
        msg[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i)), bswap);
      } else {
        // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], t = 4i .. 4i+3
        const __m128i w16_s0 = _mm_sha256msg1_epu32(msg[i - 4], msg[i - 3]);
        const __m128i w7 = _mm_alignr_epi8(msg[i - 1], msg[i - 2], 4);
        msg[i] = _mm_sha256msg2_epu32(_mm_add_epi32(w16_s0, w7), msg[i - 1]);
      }
      __m128i wk = _mm_add_epi32(msg[i], _mm_loadu_si128(reinterpret_cast<const __m128i*>(kK + 4 * i)));
      // Two rounds turn (a,b,e,f) into the next (c,d,g,h), so the registers swap roles twice.
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);  // rounds 4i, 4i+1: new (a,b,e,f)
      wk = _mm_shuffle_epi32(wk, 0x0E);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);  // rounds 4i+2, 4i+3
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
  }
  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);  // a b e f
  const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);  // g h c d
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h_), _mm_blend_epi16(feba, dchg, 0xF0));        // a b c d
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h_ + 4), _mm_alignr_epi8(dchg, feba, 8));      // e f g h
}

bool cpu_has_sha() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (b >> 29) & 1u;  // CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29]
}

}  // namespace

Sha256::Sha256(bool portable)
    : h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19},
      portable_(portable) {}

void Sha256::blocks(const uint8_t* p, size_t n_blocks) {
  static const bool shani = cpu_has_sha();
  if (shani && !portable_) {
    compress_shani(h_, p, n_blocks);
  } else {
    for (size_t i = 0; i < n_blocks; ++i) compress_portable(h_, p + 64 * i);
  }
}

void Sha256::update(const uint8_t* data, size_t n) {
  total_ += n;
  if (buf_len_ > 0) {
    const size_t take = std::min(n, 64 - buf_len_);
    std::memcpy(buf_ + buf_len_, data, take);
    buf_len_ += take;
    data += take;
    n -= take;
    if (buf_len_ < 64) return;
    blocks(buf_, 1);
    buf_len_ = 0;
  }
  blocks(data, n / 64);
  data += n / 64 * 64;
  n %= 64;
  std::memcpy(buf_, data, n);
  buf_len_ = n;
}

std::string Sha256::hex_digest() {
  const uint64_t bits = total_ * 8;
  const uint8_t pad = 0x80;
  update(&pad, 1);
  const uint8_t zero = 0;
  while (buf_len_ != 56) update(&zero, 1);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(bits >> (56 - 8 * i));
  update(len, 8);
  std::string out;
  for (uint32_t v : h_) out += fmt::format("{:08x}", v);
  return out;
}

std::string sha256_hex(const std::string& bytes) {
  Sha256 s;
  s.update(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return s.hex_digest();
}

std::string sha256_files(const std::vector<std::string>& paths) {
  // Key: every file's (path, size, mtime), so a rewritten file is hashed again.
  using Stamp = std::tuple<std::string, int64_t, int64_t, int64_t>;
  std::vector<Stamp> key;
  for (const std::string& p : paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) usage_error("{}: cannot read weight file for sha256", p);
    key.emplace_back(p, int64_t(st.st_size), int64_t(st.st_mtim.tv_sec), int64_t(st.st_mtim.tv_nsec));
  }
  static std::mutex mu;
  static std::map<std::vector<Stamp>, std::string> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  Sha256 s;
  std::vector<uint8_t> buf(size_t(1) << 20);
  for (const std::string& p : paths) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(p.c_str(), "rb"), &std::fclose);
    if (!f) usage_error("{}: cannot open weight file for sha256", p);
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) s.update(buf.data(), n);
    if (std::ferror(f.get())) runtime_error("{}: read error while hashing", p);
  }
  std::string digest = s.hex_digest();
  std::lock_guard<std::mutex> lock(mu);
  cache[key] = digest;
  return digest;
}

}  // namespace kvaudit::model
