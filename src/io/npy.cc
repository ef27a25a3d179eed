#include "io/npy.h"

#include <cctype>
#include <cstring>

#include "core/error.h"
#include "io/atomic_file.h"

namespace kvaudit::io {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;
constexpr size_t kHeaderAlign = 64;  // numpy pads magic + header to a multiple of 64 bytes

// The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
// Returns the text after "'key':" with leading spaces skipped.
std::string_view dict_value(std::string_view header, std::string_view key, const std::string& path) {
  for (const char quote : {'\'', '"'}) {
    const std::string needle = std::string(1, quote) + std::string(key) + quote;
    size_t p = header.find(needle);
    if (p == std::string_view::npos) continue;
    p += needle.size();
    while (p < header.size() && header[p] == ' ') ++p;
    if (p >= header.size() || header[p] != ':') break;
    ++p;
    while (p < header.size() && header[p] == ' ') ++p;
    return header.substr(p);
  }
  usage_error("{}: .npy header has no '{}' entry", path, key);
}

std::vector<int64_t> parse_shape(std::string_view v, const std::string& path) {
  if (v.empty() || v[0] != '(') usage_error("{}: .npy header shape is not a tuple", path);
  std::vector<int64_t> shape;
  size_t p = 1;
  while (true) {
    while (p < v.size() && (v[p] == ' ' || v[p] == ',')) ++p;
    if (p >= v.size()) usage_error("{}: .npy header shape is not terminated", path);
    if (v[p] == ')') break;
    if (!std::isdigit(static_cast<unsigned char>(v[p]))) usage_error("{}: .npy header shape has a non-integer entry", path);
    int64_t d = 0;
    while (p < v.size() && std::isdigit(static_cast<unsigned char>(v[p]))) {
      if (__builtin_mul_overflow(d, int64_t(10), &d) || __builtin_add_overflow(d, int64_t(v[p] - '0'), &d))
        usage_error("{}: .npy header shape entry is too large", path);
      ++p;
    }
    while (p < v.size() && v[p] == 'L') ++p;  // Python 2 long suffix
    shape.push_back(d);
  }
  return shape;
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < kMagicBytes + 2 || bytes.compare(0, kMagicBytes, kMagic, kMagicBytes) != 0)
    usage_error("{}: not a .npy file (bad magic)", path);
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    if (bytes.size() < 10) usage_error("{}: truncated .npy header", path);
    uint16_t n;
    std::memcpy(&n, bytes.data() + 8, 2);
    header_len = n;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) usage_error("{}: truncated .npy header", path);
    uint32_t n;
    std::memcpy(&n, bytes.data() + 8, 4);
    header_len = n;
    header_start = 12;
  } else {
    usage_error("{}: unsupported .npy format version {}", path, major);
  }
  if (header_len > bytes.size() - header_start) usage_error("{}: truncated .npy header", path);
  const std::string_view header(bytes.data() + header_start, header_len);

  const std::string_view descr = dict_value(header, "descr", path);
  if (!(descr.starts_with("'<f4'") || descr.starts_with("\"<f4\""))) {
    const size_t end = descr.find_first_of(",}");
    usage_error("{}: .npy dtype {} is not supported (only little-endian float32 '<f4')", path,
                std::string(descr.substr(0, end)));
  }
  const std::string_view fortran = dict_value(header, "fortran_order", path);
  if (fortran.starts_with("True")) usage_error("{}: .npy array is in Fortran order; only C order is supported", path);
  if (!fortran.starts_with("False")) usage_error("{}: .npy header has an invalid fortran_order", path);

  NpyArray arr;
  arr.shape = parse_shape(dict_value(header, "shape", path), path);
  uint64_t n = 1;
  for (int64_t d : arr.shape)
    if (__builtin_mul_overflow(n, uint64_t(d), &n)) usage_error("{}: .npy shape is too large", path);
  const size_t data_start = header_start + header_len;
  const size_t data_bytes = bytes.size() - data_start;
  if (n > data_bytes / 4 || data_bytes != n * 4)
    usage_error("{}: .npy data has {} bytes but its shape needs {} float32 values", path, data_bytes, n);
  arr.data.resize(size_t(n));
  if (n > 0) std::memcpy(arr.data.data(), bytes.data() + data_start, data_bytes);  // an empty vector's data() may be null
  return arr;
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const float> data) {
  uint64_t n = 1;
  std::string shape_txt = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) usage_error("write_npy {}: negative dimension {}", path, shape[i]);
    n *= uint64_t(shape[i]);
    shape_txt += fmt::format("{}{}", i ? ", " : "", shape[i]);
  }
  shape_txt += shape.size() == 1 ? ",)" : ")";
  if (n != data.size()) usage_error("write_npy {}: shape holds {} values, data has {}", path, n, data.size());
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}", shape_txt);
  const size_t prefix = kMagicBytes + 2 + 2;  // magic, version, u16 header length
  header.append((kHeaderAlign - (prefix + header.size() + 1) % kHeaderAlign) % kHeaderAlign, ' ');
  header += '\n';
  std::string out(kMagic, kMagicBytes);
  out += '\x01';
  out += '\x00';
  const uint16_t len = uint16_t(header.size());
  out.append(reinterpret_cast<const char*>(&len), 2);
  out += header;
  out.append(reinterpret_cast<const char*>(data.data()), data.size() * 4);
  write_file_atomic(path, out);
}

}  // namespace kvaudit::io
