// SHA-256 against the FIPS 180-4 example vectors and a file.
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/sha256.h"
#include "tiny_model.h"

namespace kvaudit::model {
namespace {

TEST(Sha256, Fips180Vectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PortablePathMatchesVectors) {
  // The default path uses the SHA extensions where the CPU has them; this one never does.
  auto portable = [](const std::string& bytes) {
    Sha256 h(/*portable=*/true);
    h.update(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    return h.hex_digest();
  };
  EXPECT_EQ(portable("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(portable(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const std::string mixed(4099, '\x5a');
  EXPECT_EQ(portable(mixed), sha256_hex(mixed));
}

TEST(Sha256, IncrementalUpdatesMatchOneShot) {
  const std::string s(1000, 'x');
  Sha256 h;
  for (size_t i = 0; i < s.size(); i += 7) h.update(reinterpret_cast<const uint8_t*>(s.data() + i), std::min<size_t>(7, s.size() - i));
  EXPECT_EQ(h.hex_digest(), sha256_hex(s));
}

TEST(Sha256, FilesAreConcatenated) {
  const std::string dir = testing_util::fresh_dir("sha");
  std::ofstream(dir + "/a") << "ab";
  std::ofstream(dir + "/b") << "c";
  EXPECT_EQ(sha256_files({dir + "/a", dir + "/b"}), sha256_hex("abc"));
  EXPECT_THROW(sha256_files({dir + "/missing"}), UsageError);
}

}  // namespace
}  // namespace kvaudit::model
