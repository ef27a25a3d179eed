// .npy read/write and atomic file helpers.
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "io/atomic_file.h"
#include "io/npy.h"
#include "io_test_util.h"

namespace kvaudit::io {
namespace {

using testing::expect_usage_error;
using testing::ScratchDir;

TEST(Npy, RoundTripShapes) {
  ScratchDir dir;
  const std::vector<float> data = {1.f, 2.f, 3.f, 4.f, 5.f, 6.f};
  for (const auto& shape : std::vector<std::vector<int64_t>>{{6}, {2, 3}, {1, 2, 3}, {}}) {
    const std::string p = dir.file("a.npy");
    const size_t n = shape.empty() ? 1 : data.size();
    write_npy(p, shape, std::span<const float>(data.data(), n));
    const std::string bytes = read_file(p);
    EXPECT_EQ((bytes.size() - n * 4) % 64, 0u) << "header padded to 64 bytes";
    const NpyArray a = read_npy(p);
    EXPECT_EQ(a.shape, shape);
    EXPECT_EQ(a.data, std::vector<float>(data.begin(), data.begin() + long(n)));
  }
}

TEST(Npy, ExactHeaderBytes) {
  ScratchDir dir;
  const std::string p = dir.file("a.npy");
  const float v[2] = {0.5f, -1.f};
  write_npy(p, {2}, v);
  const std::string bytes = read_file(p);
  // numpy.save(np.array([0.5, -1], np.float32)) writes exactly this header.
  const std::string want_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  ASSERT_GE(bytes.size(), 10u + want_header.size());
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(bytes.substr(10, want_header.size()), want_header);
  EXPECT_EQ(bytes[127], '\n');
  EXPECT_EQ(bytes.size(), 128u + 8u);
}

std::string npy_bytes(int major, const std::string& header, size_t data_bytes) {
  std::string out = std::string("\x93NUMPY", 6) + char(major) + '\0';
  if (major == 1) {
    const uint16_t n = uint16_t(header.size());
    out.append(reinterpret_cast<const char*>(&n), 2);
  } else {
    const uint32_t n = uint32_t(header.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
  }
  return out + header + std::string(data_bytes, '\0');
}

TEST(Npy, ReadsVersion2) {
  ScratchDir dir;
  const std::string p = dir.file("v2.npy");
  write_file_atomic(p, npy_bytes(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1), }\n", 12));
  const NpyArray a = read_npy(p);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(a.data, std::vector<float>(3, 0.f));
}

TEST(Npy, RejectsOtherDtypesOrderAndSizes) {
  ScratchDir dir;
  const std::string p = dir.file("bad.npy");
  write_file_atomic(p, npy_bytes(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }\n", 16));
  expect_usage_error([&] { read_npy(p); }, {p, "'<i8'"});
  write_file_atomic(p, npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", 16));
  expect_usage_error([&] { read_npy(p); }, {p, "Fortran"});
  write_file_atomic(p, npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }\n", 16));
  expect_usage_error([&] { read_npy(p); }, {p, "16 bytes"});
  write_file_atomic(p, npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", 16));
  expect_usage_error([&] { read_npy(p); }, {p});
  write_file_atomic(p, "PK\x03\x04 not npy");
  expect_usage_error([&] { read_npy(p); }, {p, "magic"});
  expect_usage_error([&] { read_npy(dir.file("missing.npy")); }, {"missing.npy"});
  const float v[3] = {};
  expect_usage_error([&] { write_npy(p, {2, 2}, v); }, {p});
}

// fuzz/regressions/io_npy/empty_shape_null_memcpy (io_npy_fuzz, UBSan): a shape with a 0 and no
// data bytes passed the empty vector's null data() to memcpy. It reads as an empty array.
TEST(Npy, ZeroSizedShapeReadsEmpty) {
  const NpyArray a = read_npy(std::string(KVAUDIT_SOURCE_DIR) + "/fuzz/regressions/io_npy/empty_shape_null_memcpy");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{8, 96, 0, 22, 222, 6}));
  EXPECT_TRUE(a.data.empty());
  ScratchDir dir;
  const std::string p = dir.file("empty.npy");
  write_npy(p, {0, 4}, {});
  EXPECT_EQ(read_npy(p).shape, (std::vector<int64_t>{0, 4}));
}

TEST(AtomicFile, WritesReplacesAndLeavesNoTemporaries) {
  ScratchDir dir;
  const std::string p = dir.file("out.json");
  write_file_atomic(p, "first");
  write_file_atomic(p, "second");
  EXPECT_EQ(read_file(p), "second");
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
  expect_usage_error([&] { write_file_atomic(dir.file("no/such/dir/x"), "x"); }, {"no/such/dir"});
  expect_usage_error([&] { read_file(dir.file("absent")); }, {"absent"});
  expect_usage_error([&] { read_file(dir.path().string()); }, {"directory"});
}

}  // namespace
}  // namespace kvaudit::io
