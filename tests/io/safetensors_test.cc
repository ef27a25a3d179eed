// Safetensors reader: single file, model.safetensors dir, sharded dir, and corrupt inputs.
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "core/half.h"
#include "io/atomic_file.h"
#include "io/open_weights.h"
#include "io/safetensors.h"
#include "io_test_util.h"

namespace kvaudit::io {
namespace {

using testing::expect_usage_error;
using testing::ScratchDir;

const std::vector<float> kVals = {1.0f, -2.5f, 0.1f, 3.0e-5f, 65504.0f, -0.0f};

std::vector<SafetensorsWriteTensor> sample_tensors() {
  return {make_safetensors_tensor("a.f32", "F32", {2, 3}, kVals),
          make_safetensors_tensor("b.f16", "F16", {3, 2}, kVals),
          make_safetensors_tensor("c.bf16", "BF16", {6}, kVals),
          SafetensorsWriteTensor{"d.i64", "I64", {2}, std::vector<uint8_t>(16, 0)}};
}

TEST(Safetensors, RoundTripAllFloatDtypes) {
  ScratchDir dir;
  const std::string path = dir.file("x.safetensors");
  write_safetensors(path, sample_tensors(), {{"format", "pt"}});
  const auto src = SafetensorsSource::open(path);
  EXPECT_EQ(src->names(), (std::vector<std::string>{"a.f32", "b.f16", "c.bf16", "d.i64"}));
  EXPECT_EQ(src->files()[0]->metadata().at("format"), "pt");
  EXPECT_EQ(src->info("b.f16")->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(src->info("c.bf16")->dtype, "BF16");
  std::vector<float> got(6);
  src->read_f32("a.f32", got);
  EXPECT_EQ(got, kVals);
  src->read_f32("b.f16", got);
  for (size_t i = 0; i < kVals.size(); ++i) EXPECT_EQ(got[i], round_fp16(kVals[i])) << i;
  src->read_f32("c.bf16", got);
  for (size_t i = 0; i < kVals.size(); ++i) EXPECT_EQ(got[i], round_bf16(kVals[i])) << i;
  std::vector<float> two(2);
  expect_usage_error([&] { src->read_f32("d.i64", two); }, {path, "d.i64", "I64"});
  expect_usage_error([&] { src->read_f32("zzz", two); }, {path, "zzz"});
  expect_usage_error([&] { src->read_f32("a.f32", two); }, {path, "a.f32", "6 elements"});
  EXPECT_FALSE(src->info("zzz").has_value());
}

TEST(Safetensors, DirectoryWithModelSafetensors) {
  ScratchDir dir;
  write_safetensors(dir.file("model.safetensors"), sample_tensors());
  const auto src = open_weights(dir.path().string());
  EXPECT_EQ(src->names().size(), 4u);
  EXPECT_EQ(src->describe(), dir.file("model.safetensors"));
}

TEST(Safetensors, ShardedDirectory) {
  ScratchDir dir;
  auto ts = sample_tensors();
  write_safetensors(dir.file("model-00001-of-00002.safetensors"), {ts[0], ts[1]});
  write_safetensors(dir.file("model-00002-of-00002.safetensors"), {ts[2]});
  const nlohmann::json index = {{"metadata", {{"total_size", 48}}},
                                {"weight_map",
                                 {{"a.f32", "model-00001-of-00002.safetensors"},
                                  {"b.f16", "model-00001-of-00002.safetensors"},
                                  {"c.bf16", "model-00002-of-00002.safetensors"}}}};
  write_file_atomic(dir.file("model.safetensors.index.json"), index.dump());
  const auto src = SafetensorsSource::open(dir.path().string());
  EXPECT_EQ(src->names(), (std::vector<std::string>{"a.f32", "b.f16", "c.bf16"}));
  EXPECT_EQ(src->files().size(), 2u);
  std::vector<float> got(6);
  src->read_f32("c.bf16", got);
  EXPECT_EQ(got[1], -2.5f);

  std::filesystem::remove(dir.file("model-00002-of-00002.safetensors"));
  expect_usage_error([&] { SafetensorsSource::open(dir.path().string()); },
                     {"model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing"});
}

TEST(Safetensors, EmptyDirectoryAndUnknownExtension) {
  ScratchDir dir;
  expect_usage_error([&] { open_weights(dir.path().string()); }, {dir.path().string(), "model.safetensors"});
  write_file_atomic(dir.file("w.bin"), "xx");
  expect_usage_error([&] { open_weights(dir.file("w.bin")); }, {dir.file("w.bin")});
  expect_usage_error([&] { open_weights(dir.file("none.gguf")); }, {dir.file("none.gguf")});
}

// --- corrupt files: build header JSON by hand.

std::string st_file(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\0');
}

class SafetensorsCorrupt : public ::testing::Test {
 protected:
  std::string write(const std::string& bytes) {
    const std::string p = dir_.file("bad.safetensors");
    write_file_atomic(p, bytes);
    return p;
  }
  void expect_bad(const std::string& bytes, std::initializer_list<std::string> fragments) {
    const auto p = write(bytes);
    std::vector<std::string> all(fragments);
    all.push_back(p);
    try {
      SafetensorsSource::open(p);
      ADD_FAILURE() << "no UsageError";
    } catch (const UsageError& e) {
      for (const auto& f : all) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what() << " / " << f;
    }
  }
  ScratchDir dir_;
};

TEST_F(SafetensorsCorrupt, TruncatedHeaderLength) { expect_bad(std::string(5, '\0'), {"8-byte"}); }

TEST_F(SafetensorsCorrupt, HeaderLengthBeyondFile) {
  std::string s = st_file("{}", 0);
  const uint64_t n = 1000;
  std::memcpy(s.data(), &n, 8);
  expect_bad(s, {"header length 1000"});
}

TEST_F(SafetensorsCorrupt, BadJson) { expect_bad(st_file("{\"a\": [1,", 0), {"not valid JSON"}); }

TEST_F(SafetensorsCorrupt, OffsetsOutOfRange) {
  expect_bad(st_file(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4), {"w", "data_offsets"});
}

TEST_F(SafetensorsCorrupt, ShapeDisagreesWithBytes) {
  expect_bad(st_file(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8), {"w", "[3]", "12 bytes"});
}

TEST_F(SafetensorsCorrupt, HugeShapeOverflows) {
  expect_bad(st_file(R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 8], "data_offsets": [0, 8]}})", 8),
             {"w"});
}

TEST_F(SafetensorsCorrupt, OverlappingTensors) {
  expect_bad(st_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                     12),
             {"overlap"});
}

TEST_F(SafetensorsCorrupt, UnknownDtypeAndMissingFields) {
  expect_bad(st_file(R"({"w": {"dtype": "F7", "shape": [1], "data_offsets": [0, 1]}})", 1), {"w", "F7"});
  expect_bad(st_file(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4), {"w", "shape"});
  expect_bad(st_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-1, 4]}})", 4), {"w", "data_offsets"});
  expect_bad(st_file(R"([1, 2])", 0), {"not a JSON object"});
}

}  // namespace
}  // namespace kvaudit::io
