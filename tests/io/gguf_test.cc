// GGUF reader: round trips through GgufWriter, a file from gguf-py's writer, corrupt inputs,
// and the real models when they are cached.
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <set>
#include <thread>

#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "core/half.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io_test_util.h"

namespace kvaudit::io {
namespace {

using testing::expect_usage_error;
using testing::ScratchDir;

std::vector<uint8_t> q8_0_bytes(int n_blocks, float d) {
  std::vector<uint8_t> out(size_t(n_blocks) * sizeof(BlockQ8_0));
  for (int b = 0; b < n_blocks; ++b) {
    BlockQ8_0 blk{};
    blk.d = float_to_fp16(d);
    for (int j = 0; j < kQK; ++j) blk.qs[j] = int8_t(j - 16 + b);
    std::memcpy(out.data() + size_t(b) * sizeof(blk), &blk, sizeof(blk));
  }
  return out;
}

// A small valid file: metadata of several kinds, an F32 and a Q8_0 tensor.
GgufWriter small_writer() {
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("llama.block_count", 2);
  w.set("tokenizer.ggml.tokens", nlohmann::json::array({"<s>", "a", "b"}));
  const std::vector<float> vals = {1.f, -2.f, 3.5f, 0.f, 7.f, 8.f};
  w.add_tensor_f32("w.f32", GgmlType::F32, {3, 2}, vals);
  w.add_tensor("w.q8", GgmlType::Q8_0, {32, 2}, q8_0_bytes(2, 0.5f));
  return w;
}

TEST(GgufWriterRoundTrip, EveryValueTypeAndTensor) {
  ScratchDir dir;
  GgufWriter w = small_writer();
  w.set("k.u8", 200, GgufValueType::UINT8);
  w.set("k.i8", -100, GgufValueType::INT8);
  w.set("k.u16", 60000, GgufValueType::UINT16);
  w.set("k.i16", -30000, GgufValueType::INT16);
  w.set("k.u32", 4000000000u);
  w.set("k.i32", -5);
  w.set("k.u64", uint64_t(1) << 40);
  w.set("k.i64", -(int64_t(1) << 40));
  w.set("k.f32", 0.25);
  w.set("k.f64", 0.1, GgufValueType::FLOAT64);
  w.set("k.bool", false);
  w.set("k.bytes", std::string("\xff\xfe", 2));  // invalid UTF-8 is kept as bytes
  w.set("k.int_arr", {1, -2, 3}, GgufValueType::INT32);
  w.set("k.float_arr", {1.5, 2});
  w.set("k.bool_arr", {true, false});
  w.set("k.empty", nlohmann::json::array(), GgufValueType::STRING);
  w.set_alignment(64);
  const std::string path = dir.file("m.gguf");
  w.write(path);

  const auto f = GgufFile::open(path);
  const auto& md = f->metadata();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(md.at("general.architecture").get<std::string>(), "llama");
  EXPECT_EQ(md.at("llama.block_count").get<int>(), 2);
  EXPECT_EQ(f->value_type("llama.block_count"), GgufValueType::UINT32);
  EXPECT_EQ(md.at("k.u8").get<int>(), 200);
  EXPECT_EQ(f->value_type("k.u8"), GgufValueType::UINT8);
  EXPECT_EQ(md.at("k.i8").get<int>(), -100);
  EXPECT_EQ(md.at("k.u16").get<int>(), 60000);
  EXPECT_EQ(md.at("k.i16").get<int>(), -30000);
  EXPECT_EQ(md.at("k.u32").get<uint64_t>(), 4000000000u);
  EXPECT_EQ(md.at("k.i32").get<int>(), -5);
  EXPECT_EQ(f->value_type("k.i32"), GgufValueType::INT32);
  EXPECT_EQ(md.at("k.u64").get<uint64_t>(), uint64_t(1) << 40);
  EXPECT_EQ(f->value_type("k.u64"), GgufValueType::UINT64);
  EXPECT_EQ(md.at("k.i64").get<int64_t>(), -(int64_t(1) << 40));
  EXPECT_EQ(f->value_type("k.i64"), GgufValueType::INT64);
  EXPECT_EQ(md.at("k.f32").get<double>(), 0.25);
  EXPECT_EQ(f->value_type("k.f32"), GgufValueType::FLOAT32);
  EXPECT_EQ(md.at("k.f64").get<double>(), 0.1);
  EXPECT_EQ(md.at("k.bool").get<bool>(), false);
  EXPECT_EQ(md.at("k.bytes").get<std::string>(), std::string("\xff\xfe", 2));
  EXPECT_EQ(md.at("k.int_arr"), nlohmann::json::array({1, -2, 3}));
  EXPECT_EQ(md.at("k.float_arr"), nlohmann::json::array({1.5, 2.0}));
  EXPECT_EQ(md.at("k.bool_arr"), nlohmann::json::array({true, false}));
  EXPECT_EQ(md.at("k.empty"), nlohmann::json::array());
  EXPECT_EQ(md.at("tokenizer.ggml.tokens"), nlohmann::json::array({"<s>", "a", "b"}));

  ASSERT_EQ(f->tensors().size(), 2u);
  const auto info = f->info("w.f32");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->shape, (std::vector<int64_t>{2, 3}));  // PyTorch order: ne reversed
  EXPECT_EQ(info->dtype, "F32");
  std::vector<float> got(6);  // [2, 3]
  f->read_f32("w.f32", got);
  EXPECT_EQ(got, (std::vector<float>{1.f, -2.f, 3.5f, 0.f, 7.f, 8.f}));
  const GgufTensorInfo* q = f->find("w.q8");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->ne, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(q->nbytes, 68u);
  EXPECT_EQ(q->offset % 64, 0u);
  std::vector<float> qv(64);  // [2, 32]
  f->read_f32("w.q8", qv);
  EXPECT_EQ(qv[0], -8.0f);   // 0.5 * (0 - 16)
  EXPECT_EQ(qv[33], -7.0f);  // block 1, j = 1: 0.5 * (1 - 16 + 1)
  EXPECT_EQ(f->find("nope"), nullptr);
  EXPECT_FALSE(f->info("nope").has_value());
  expect_usage_error([&] { f->read_f32("nope", qv); }, {path, "nope"});
  expect_usage_error([&] { f->read_f32("w.q8", std::span<float>(qv.data(), 10)); }, {path, "w.q8"});
}

TEST(GgufWriterRoundTrip, WriterRejectsBadInput) {
  GgufWriter w;
  expect_usage_error([&] { w.set("k", 300, GgufValueType::UINT8); }, {"k"});
  expect_usage_error([&] { w.set("k", {1, "a"}); }, {"k", "mixes"});
  expect_usage_error([&] { w.add_tensor("t", GgmlType::Q8_0, {32}, std::vector<uint8_t>(10)); }, {"t", "34"});
}

TEST(GgufReader, ReadsTheGgufPyFixture) {
  const auto f = GgufFile::open(std::string(KVAUDIT_FIXTURES) + "/io/dequant_reference.gguf");
  const auto& md = f->metadata();
  EXPECT_EQ(md.at("general.architecture").get<std::string>(), "kvaudit-io-fixture");
  EXPECT_EQ(md.at("fixture.u32").get<uint64_t>(), 4000000000u);
  EXPECT_EQ(md.at("fixture.i32").get<int>(), -7);
  EXPECT_EQ(md.at("fixture.u64").get<uint64_t>(), uint64_t(1) << 40);
  EXPECT_EQ(md.at("fixture.i8").get<int>(), -128);
  EXPECT_EQ(md.at("fixture.f32").get<double>(), 0.25);
  EXPECT_EQ(md.at("fixture.f64").get<double>(), -1.5);
  EXPECT_EQ(md.at("fixture.bool").get<bool>(), true);
  EXPECT_EQ(md.at("fixture.str").get<std::string>(), "h\xc3\xa9llo");
  EXPECT_EQ(md.at("fixture.strs"), nlohmann::json::array({"a", "", "\xc4\xa0The"}));
  EXPECT_EQ(md.at("fixture.ints"), nlohmann::json::array({1, -2, 3}));
  EXPECT_EQ(f->tensors().size(), 26u);  // 13 types x (raw, expected)
  EXPECT_EQ(f->info("Q4_K.raw")->shape, (std::vector<int64_t>{6, 256}));
}

TEST(GgufReader, ConcurrentReadsAgreeWithSerialOnes) {
  const auto f = GgufFile::open(std::string(KVAUDIT_FIXTURES) + "/io/dequant_reference.gguf");
  const auto names = f->names();
  std::vector<std::vector<float>> serial(names.size()), parallel(names.size());  // each [6, 256]
  for (size_t i = 0; i < names.size(); ++i) {
    serial[i].resize(size_t(f->info(names[i])->numel()));
    parallel[i].resize(serial[i].size());
    f->read_f32(names[i], serial[i]);
  }
  std::vector<std::thread> threads;
  for (size_t w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      for (size_t i = w; i < names.size(); i += 4) f->read_f32(names[i], parallel[i]);
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(serial[i], parallel[i]) << names[i];
}

// --- corrupt inputs: each must be a UsageError naming the file and the problem.

class GgufCorrupt : public ::testing::Test {
 protected:
  std::string write(const std::string& bytes) {
    const std::string path = dir_.file("bad.gguf");
    write_file_atomic(path, bytes);
    return path;
  }
  std::string valid_ = small_writer().bytes();
  ScratchDir dir_;
};

template <typename T>
void poke(std::string& s, size_t off, T v) {
  std::memcpy(s.data() + off, &v, sizeof(T));
}

TEST_F(GgufCorrupt, BadMagic) {
  std::string s = valid_;
  s[0] = 'X';
  const auto p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "magic"});
}

TEST_F(GgufCorrupt, UnsupportedVersion) {
  std::string s = valid_;
  poke<uint32_t>(s, 4, 1);
  const auto p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "version 1"});
}

TEST_F(GgufCorrupt, Version2HasTheSameLayout) {
  std::string s = valid_;
  poke<uint32_t>(s, 4, 2);
  const auto f = GgufFile::open(write(s));
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->metadata().at("llama.block_count").get<int>(), 2);
}

TEST_F(GgufCorrupt, AbsurdCounts) {
  std::string s = valid_;
  poke<uint64_t>(s, 16, uint64_t(1) << 60);  // metadata count
  auto p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "metadata entries"});
  s = valid_;
  poke<uint64_t>(s, 8, uint64_t(1) << 50);  // tensor count
  p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "tensor infos"});
}

TEST_F(GgufCorrupt, StringLengthPastEnd) {
  std::string s = valid_;
  poke<uint64_t>(s, 24, uint64_t(1) << 40);  // length of the first key
  const auto p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "length"});
}

TEST_F(GgufCorrupt, ArrayLengthPastEnd) {
  std::string s = valid_;
  const size_t pos = s.find("tokenizer.ggml.tokens");
  ASSERT_NE(pos, std::string::npos);
  // key, value type ARRAY (u32), element type (u32), then the u64 count.
  poke<uint64_t>(s, pos + 21 + 4 + 4, uint64_t(1) << 45);
  const auto p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "tokenizer.ggml.tokens", "array elements"});
}

TEST_F(GgufCorrupt, BadValueTypeAndTensorTypeIds) {
  std::string s = valid_;
  const size_t pos = s.find("llama.block_count");
  poke<uint32_t>(s, pos + 17, 99);
  auto p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "llama.block_count", "99"});

  s = valid_;
  const size_t tpos = s.find("w.q8");  // name, n_dims, ne[2], then the type id
  poke<uint32_t>(s, tpos + 4 + 4 + 16, 5);
  p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "w.q8", "type id 5"});
}

TEST_F(GgufCorrupt, DimsAndBlockSize) {
  std::string s = valid_;
  const size_t tpos = s.find("w.q8");
  poke<uint32_t>(s, tpos + 4, 7);
  auto p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "w.q8", "7 dimensions"});

  s = valid_;
  poke<uint64_t>(s, tpos + 4 + 4, 33);  // ne[0] not a multiple of 32
  p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "w.q8", "block size"});
}

TEST_F(GgufCorrupt, TensorDataPastEof) {
  std::string s = valid_;
  s.resize(s.size() - 40);  // past the 28 bytes of padding after the last tensor
  const auto p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "w.q8", "past the end"});
}

TEST_F(GgufCorrupt, MisalignedOffset) {
  std::string s = valid_;
  const size_t tpos = s.find("w.q8");
  poke<uint64_t>(s, tpos + 4 + 4 + 16 + 4, 33);
  const auto p = write(s);
  expect_usage_error([&] { GgufFile::open(p); }, {p, "w.q8", "alignment"});
}

TEST_F(GgufCorrupt, TruncatedEverywhereIsAUsageError) {
  for (size_t n : {size_t(0), size_t(3), size_t(7), size_t(20), size_t(40), valid_.size() / 2}) {
    const auto p = write(valid_.substr(0, n));
    expect_usage_error([&] { GgufFile::open(p); }, {p});
  }
}

TEST(GgufReader, MissingFile) {
  expect_usage_error([] { GgufFile::open("/nonexistent/x.gguf"); }, {"/nonexistent/x.gguf"});
}

// --- real models (fetched by scripts/fetch-models.sh); skipped when absent.

std::string cached_model(const char* name) {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/kvaudit/" + name;
}

struct RealModel {
  const char* file;
  const char* arch;
  size_t n_tensors;
  std::set<std::string> types;  // ggml types of its tensors, all of which the sample must cover
  bool dequantize_all;  // the 1.1 GB model checks a sample unless KVAUDIT_SLOW_TESTS=1 (about 10 s)
};

constexpr int64_t kSampleMaxElements = int64_t(1) << 24;

class GgufRealModel : public ::testing::TestWithParam<RealModel> {};

TEST_P(GgufRealModel, OpensAndDequantizesToFiniteValues) {
  const std::string path = cached_model(GetParam().file);
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not cached (scripts/fetch-models.sh)";
  const auto t0 = std::chrono::steady_clock::now();
  const auto f = GgufFile::open(path);
  const double open_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("open_ms", std::to_string(open_ms));
  std::printf("[ info ] %s: open + metadata %.1f ms\n", GetParam().file, open_ms);
  const auto& md = f->metadata();
  EXPECT_EQ(md.at("general.architecture").get<std::string>(), GetParam().arch);
  EXPECT_EQ(f->tensors().size(), GetParam().n_tensors);
  EXPECT_GT(md.at("tokenizer.ggml.tokens").size(), 40000u);
  EXPECT_EQ(md.at("tokenizer.ggml.tokens").size(), md.at("tokenizer.ggml.token_type").size());

  const bool all = GetParam().dequantize_all || std::getenv("KVAUDIT_SLOW_TESTS") != nullptr;
  std::vector<float> buf;
  std::set<std::string> types_seen;
  size_t checked = 0;
  for (size_t i = 0; i < f->tensors().size(); ++i) {
    const auto& t = f->tensors()[i];
    // The sample: every 8th tensor and the first of each type, below kSampleMaxElements (token_embd alone is 233M values).
    const bool new_type = types_seen.count(ggml_type_name(t.type)) == 0;
    if (!all && ((i % 8 != 0 && !new_type) || t.numel() > kSampleMaxElements)) continue;
    buf.resize(size_t(t.numel()));
    f->read_f32(t.name, buf);
    size_t bad = 0;
    for (float v : buf) bad += !std::isfinite(v);
    EXPECT_EQ(bad, 0u) << t.name << " (" << ggml_type_name(t.type) << ")";
    ++checked;
    types_seen.insert(ggml_type_name(t.type));
  }
  EXPECT_EQ(types_seen, GetParam().types);
  EXPECT_GT(checked, 10u);
  const double total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ info ] %s: %zu tensors dequantized (%s), %.0f ms in all\n", GetParam().file, checked,
              fmt::format("{}", fmt::join(types_seen, ",")).c_str(), total_ms);
}

INSTANTIATE_TEST_SUITE_P(Cached, GgufRealModel,
                         ::testing::Values(RealModel{"SmolLM2-135M-Instruct.Q4_1.gguf", "llama", 272, {"F32", "Q4_1", "Q8_0"}, true},
                                           RealModel{"Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf", "qwen2", 339,
                                                     {"F32", "Q4_K", "Q6_K"}, false}),
                         [](const auto& info) { return std::string(info.param.arch); });

}  // namespace
}  // namespace kvaudit::io
