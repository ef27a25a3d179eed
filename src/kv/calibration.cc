#include "kv/calibration.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <string_view>

#include "core/error.h"

namespace kvaudit::kv {
namespace {

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::vector<uint8_t>& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    const uint32_t n = uint32_t(in[i]) << 16 | (i + 1 < in.size() ? uint32_t(in[i + 1]) << 8 : 0) |
                       (i + 2 < in.size() ? uint32_t(in[i + 2]) : 0);
    out += kBase64[n >> 18 & 63];
    out += kBase64[n >> 12 & 63];
    out += i + 1 < in.size() ? kBase64[n >> 6 & 63] : '=';
    out += i + 2 < in.size() ? kBase64[n & 63] : '=';
  }
  return out;
}

// Throws UsageError (naming `what`) on a character outside the alphabet or a bad length.
std::vector<uint8_t> base64_decode(std::string_view in, const std::string& what) {
  if (in.size() % 4 != 0) usage_error("calibration: {} is not base64 (length {})", what, in.size());
  std::vector<uint8_t> out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t n = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = in[i + j];
      uint32_t v = 0;
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        ++pad;
      } else if (pad > 0) {
        usage_error("calibration: {} is not base64 (data after '=')", what);
      } else if (const char* p = std::char_traits<char>::find(kBase64, 64, c)) {
        v = uint32_t(p - kBase64);
      } else {
        usage_error("calibration: {} is not base64 (character {})", what, int(static_cast<unsigned char>(c)));
      }
      n = n << 6 | v;
    }
    out.push_back(uint8_t(n >> 16));
    if (pad < 2) out.push_back(uint8_t(n >> 8));
    if (pad < 1) out.push_back(uint8_t(n));
  }
  return out;
}

void put_varint(uint32_t v, std::vector<uint8_t>* out) {
  while (v >= 0x80) {
    out->push_back(uint8_t(v | 0x80));
    v >>= 7;
  }
  out->push_back(uint8_t(v));
}

// Sorted columns of samples [rows, width] -> per channel: varint(key of the smallest), then
// varint(key difference) to each next one.
std::vector<uint8_t> encode_sorted_columns(const ChannelStats& st) {
  const int64_t rows = st.n_sample_rows();
  std::vector<uint8_t> out;
  out.reserve(size_t(rows) * st.width * 3);
  std::vector<uint32_t> col(rows);
  for (int c = 0; c < st.width; ++c) {
    for (int64_t r = 0; r < rows; ++r) col[r] = float_order_key(st.samples[size_t(r) * st.width + c]);
    std::sort(col.begin(), col.end());
    uint32_t prev = 0;
    for (uint32_t k : col) {
      put_varint(k - prev, &out);
      prev = k;
    }
  }
  return out;
}

// The inverse, into samples [rows, width] (row r = the r-th smallest of each channel); every read
// bounds-checked.
std::vector<float> decode_sorted_columns(const std::vector<uint8_t>& in, int64_t rows, int width, int layer) {
  std::vector<float> samples(size_t(rows) * width);
  size_t pos = 0;
  for (int c = 0; c < width; ++c) {
    uint64_t key = 0;
    for (int64_t r = 0; r < rows; ++r) {
      uint64_t v = 0;
      for (int shift = 0;; shift += 7) {
        if (pos >= in.size() || shift > 28) usage_error("calibration: samples of layer {} are truncated or malformed", layer);
        const uint8_t b = in[pos++];
        v |= uint64_t(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
      }
      key += v;
      if (key > 0xffffffffull) usage_error("calibration: samples of layer {} are malformed (not sorted)", layer);
      samples[size_t(r) * width + c] = float_from_order_key(uint32_t(key));
    }
  }
  if (pos != in.size()) usage_error("calibration: samples of layer {} have {} trailing bytes", layer, in.size() - pos);
  return samples;
}

// floats [n] <-> little-endian IEEE binary32 bytes (exact, infinities and NaN included, which JSON
// numbers cannot hold).
std::vector<uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint32_t b = std::bit_cast<uint32_t>(v[i]);
    for (int k = 0; k < 4; ++k) out[4 * i + k] = uint8_t(b >> (8 * k));
  }
  return out;
}

std::vector<float> floats_from_bytes(const std::vector<uint8_t>& in, int layer) {
  if (in.size() % 4 != 0) usage_error("calibration: max_abs of layer {} is malformed", layer);
  std::vector<float> v(in.size() / 4);
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t b = 0;
    for (int k = 0; k < 4; ++k) b |= uint32_t(in[4 * i + k]) << (8 * k);
    v[i] = std::bit_cast<float>(b);
  }
  return v;
}

}  // namespace

uint32_t float_order_key(float f) {
  const uint32_t b = std::bit_cast<uint32_t>(f);
  return b & 0x80000000u ? ~b : b | 0x80000000u;
}

float float_from_order_key(uint32_t k) { return std::bit_cast<float>(k & 0x80000000u ? k & 0x7fffffffu : ~k); }

void Calibration::observe(int layer, Role role, bool pre_rope, const float* rows, int64_t n, int width) {
  if (role == Role::V) pre_rope = false;
  ChannelStats& st = sites_[Site{layer, int(role), pre_rope}];
  if (st.width == 0) {
    st.width = width;
    st.max_abs.assign(width, 0.0f);
  }
  if (st.width != width) runtime_error("calibration: layer {} width changed from {} to {}", layer, st.width, width);
  for (int64_t t = 0; t < n; ++t) {
    const float* x = rows + t * width;  // [width]
    for (int c = 0; c < width; ++c) st.max_abs[c] = std::max(st.max_abs[c], std::fabs(x[c]));
    // Reservoir sampling (Vitter's algorithm R) with a fixed-seed xorshift: reproducible runs.
    int64_t slot = st.rows_seen;
    if (st.rows_seen >= kMaxSampleRows) {
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      slot = int64_t(rng_ % uint64_t(st.rows_seen + 1));
    }
    if (slot < kMaxSampleRows) {
      if (slot >= st.n_sample_rows()) st.samples.resize(size_t(slot + 1) * width);
      std::copy(x, x + width, st.samples.begin() + slot * width);
    }
    ++st.rows_seen;
  }
}

const ChannelStats* Calibration::find(int layer, Role role, bool pre_rope) const {
  if (role == Role::V) pre_rope = false;
  auto it = sites_.find(Site{layer, int(role), pre_rope});
  return it == sites_.end() ? nullptr : &it->second;
}

nlohmann::json Calibration::to_json() const {
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& [site, st] : sites_) {
    const auto& [layer, role, pre] = site;
    sites.push_back({{"layer", layer}, {"role", role == int(Role::K) ? "k" : "v"}, {"pre_rope", pre},
                     {"width", st.width}, {"rows_seen", st.rows_seen}, {"max_abs_f32", base64_encode(float_bytes(st.max_abs))},
                     {"sample_rows", st.n_sample_rows()}, {"samples_sorted", base64_encode(encode_sorted_columns(st))}});
  }
  return {{"kvaudit_calibration", kVersion}, {"sites", sites}};
}

int Calibration::json_version(const nlohmann::json& j) {
  if (!j.is_object()) return 0;
  const auto it = j.find("kvaudit_calibration");
  return it != j.end() && it->is_number_integer() ? it->get<int>() : 0;
}

Calibration Calibration::from_json(const nlohmann::json& j) {
  Calibration c;
  const int version = json_version(j);
  if (version < 1 || version > kVersion)
    usage_error("calibration: format version {} is not one this build reads (1..{}); delete the file to recompute",
                version, kVersion);
  try {
    for (const auto& s : j.at("sites")) {
      ChannelStats st;
      const int layer = s.at("layer").get<int>();
      st.width = s.at("width").get<int>();
      st.rows_seen = s.at("rows_seen").get<int64_t>();
      if (version == 1) {
        st.max_abs = s.at("max_abs").get<std::vector<float>>();
      } else {
        st.max_abs = floats_from_bytes(
            base64_decode(s.at("max_abs_f32").get_ref<const std::string&>(), "max_abs of layer " + std::to_string(layer)),
            layer);
      }
      const std::string role = s.at("role").get<std::string>();
      if (st.width <= 0 || st.max_abs.size() != size_t(st.width) || (role != "k" && role != "v"))
        usage_error("calibration: site of layer {} is malformed", layer);
      if (version == 1) {
        st.samples = s.at("samples").get<std::vector<float>>();
        if (st.samples.size() % size_t(st.width) != 0) usage_error("calibration: site of layer {} is malformed", layer);
      } else {
        const int64_t rows = s.at("sample_rows").get<int64_t>();
        if (rows < 0 || rows > kMaxSampleRows) usage_error("calibration: site of layer {} has {} sample rows", layer, rows);
        const std::vector<uint8_t> bytes =
            base64_decode(s.at("samples_sorted").get_ref<const std::string&>(), "samples of layer " + std::to_string(layer));
        st.samples = decode_sorted_columns(bytes, rows, st.width, layer);
      }
      c.sites_[Site{layer, role == "k" ? int(Role::K) : int(Role::V), s.at("pre_rope").get<bool>()}] = std::move(st);
    }
  } catch (const nlohmann::json::exception& e) {
    usage_error("calibration: {}", e.what());
  }
  return c;
}

}  // namespace kvaudit::kv
