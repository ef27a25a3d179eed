// Robustness: random byte flips, overwrites and truncations of small valid GGUF and safetensors
// files must only ever produce UsageError (never a crash, hang or other exception). Run once
// under -fsanitize=address as well (see the io report).
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "core/half.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "io_test_util.h"

namespace kvaudit::io {
namespace {

using testing::ScratchDir;

constexpr int kIterations = 2000;
constexpr uint32_t kSeed = 1234;

std::string valid_gguf() {
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("llama.context_length", 128);
  w.set("tokenizer.ggml.tokens", nlohmann::json::array({"<s>", "</s>", "a", "bc"}));
  w.set("tokenizer.ggml.scores", {0.0, -1.5, -2.0, -3.0});
  w.set("k.bool", true);
  const std::vector<float> v(64, 0.5f);
  w.add_tensor_f32("a", GgmlType::F16, {8, 2}, std::span<const float>(v.data(), 16));
  std::vector<uint8_t> q4k(sizeof(BlockQ4_K), 0x11);
  w.add_tensor("b", GgmlType::Q4_K, {256}, q4k);
  w.add_tensor_f32("c", GgmlType::F32, {4}, std::span<const float>(v.data(), 4));
  return w.bytes();
}

std::string valid_safetensors(const ScratchDir& dir) {
  const std::vector<float> v(12, 1.25f);
  const std::string p = dir.file("seed.safetensors");
  write_safetensors(p,
                    {make_safetensors_tensor("x", "F32", {3, 2}, std::span<const float>(v.data(), 6)),
                     make_safetensors_tensor("y", "BF16", {2, 3}, std::span<const float>(v.data(), 6))},
                    {{"format", "pt"}});
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string mutate(const std::string& seed, std::mt19937& rng) {
  std::string s = seed;
  switch (rng() % 4) {
    case 0: {  // flip 1..4 random bits
      const int n = 1 + int(rng() % 4);
      for (int i = 0; i < n; ++i) s[rng() % s.size()] ^= char(1u << (rng() % 8));
      break;
    }
    case 1:  // truncate
      s.resize(rng() % s.size());
      break;
    case 2: {  // overwrite 8 bytes with a large or random value (lengths, counts, offsets)
      const size_t off = rng() % (s.size() - 8);
      const uint64_t v = rng() % 2 ? (uint64_t(rng()) << 32 | rng()) : uint64_t(rng() % 4096);
      std::memcpy(s.data() + off, &v, 8);
      break;
    }
    default: {  // random byte values
      const int n = 1 + int(rng() % 8);
      for (int i = 0; i < n; ++i) s[rng() % s.size()] = char(rng());
      break;
    }
  }
  return s;
}

void write_plain(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// Opens and reads every tensor; returns true when it opened, false on UsageError.
template <typename Open>
bool exercise(const std::string& path, Open open) {
  try {
    auto src = open(path);
    std::vector<float> buf;
    for (const auto& name : src->names()) {
      const auto info = src->info(name);
      if (!info) ADD_FAILURE() << "names() lists " << name << " but info() does not know it";
      buf.assign(size_t(info->numel()), 0.f);
      try {
        src->read_f32(name, buf);
      } catch (const UsageError&) {  // e.g. a dtype that cannot be read as weights
      }
    }
    return true;
  } catch (const UsageError&) {
    return false;
  }
}

TEST(FuzzRobustness, GgufMutationsOnlyThrowUsageError) {
  ScratchDir dir;
  const std::string seed = valid_gguf();
  std::mt19937 rng(kSeed);
  const std::string p = dir.file("f.gguf");
  int opened = 0;
  for (int i = 0; i < kIterations; ++i) {
    write_plain(p, mutate(seed, rng));
    try {
      opened += exercise(p, [](const std::string& q) { return GgufFile::open(q); });
    } catch (const std::exception& e) {
      FAIL() << "iteration " << i << ": non-UsageError exception: " << e.what();
    }
  }
  // Mutations of tensor bytes leave a valid file; most header mutations do not.
  EXPECT_GT(opened, 0);
  EXPECT_LT(opened, kIterations);
}

TEST(FuzzRobustness, SafetensorsMutationsOnlyThrowUsageError) {
  ScratchDir dir;
  const std::string seed = valid_safetensors(dir);
  std::mt19937 rng(kSeed);
  const std::string p = dir.file("f.safetensors");
  int opened = 0;
  for (int i = 0; i < kIterations; ++i) {
    write_plain(p, mutate(seed, rng));
    try {
      opened += exercise(p, [](const std::string& q) { return SafetensorsSource::open(q); });
    } catch (const std::exception& e) {
      FAIL() << "iteration " << i << ": non-UsageError exception: " << e.what();
    }
  }
  EXPECT_GT(opened, 0);
  EXPECT_LT(opened, kIterations);
}

}  // namespace
}  // namespace kvaudit::io
