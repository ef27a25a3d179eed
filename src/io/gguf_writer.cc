#include "io/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/half.h"
#include "io/atomic_file.h"

namespace kvaudit::io {

namespace {

constexpr GgufValueType kEmptyArrayType = GgufValueType::INT32;  // an empty array with no forced type

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

// The type set() infers for one scalar.
GgufValueType infer_scalar(const nlohmann::json& v, const std::string& key) {
  if (v.is_boolean()) return GgufValueType::BOOL;
  if (v.is_string()) return GgufValueType::STRING;
  if (v.is_number_float()) return GgufValueType::FLOAT32;
  if (v.is_number_unsigned()) {
    return v.get<uint64_t>() <= std::numeric_limits<uint32_t>::max() ? GgufValueType::UINT32 : GgufValueType::UINT64;
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= 0) return i <= int64_t(std::numeric_limits<uint32_t>::max()) ? GgufValueType::UINT32 : GgufValueType::UINT64;
    return i >= std::numeric_limits<int32_t>::min() ? GgufValueType::INT32 : GgufValueType::INT64;
  }
  usage_error("GgufWriter: key {}: cannot store a {} value", key, v.type_name());
}

// The narrowest type that holds both a and b (same kind required).
GgufValueType widen(GgufValueType a, GgufValueType b, const std::string& key) {
  using T = GgufValueType;
  if (a == b) return a;
  auto is_int = [](T t) { return t == T::UINT32 || t == T::UINT64 || t == T::INT32 || t == T::INT64; };
  if (a == T::FLOAT32 && is_int(b)) return T::FLOAT32;
  if (b == T::FLOAT32 && is_int(a)) return T::FLOAT32;
  if (!is_int(a) || !is_int(b)) usage_error("GgufWriter: key {}: array mixes value kinds", key);
  const bool is_signed = a == T::INT32 || a == T::INT64 || b == T::INT32 || b == T::INT64;
  const bool wide = a == T::UINT64 || a == T::INT64 || b == T::UINT64 || b == T::INT64;
  if (!is_signed) return wide ? T::UINT64 : T::UINT32;
  // Mixing signed with a uint32 above INT32_MAX also needs 64 bits; checked again when writing.
  return wide ? T::INT64 : T::INT32;
}

template <typename T>
void put_int(std::string& out, const nlohmann::json& v, const std::string& key) {
  bool ok = v.is_number_integer();
  if (ok) {
    if (v.is_number_unsigned()) {
      ok = v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max());
    } else {
      const int64_t i = v.get<int64_t>();
      ok = i >= int64_t(std::numeric_limits<T>::min()) &&
           (i < 0 || uint64_t(i) <= uint64_t(std::numeric_limits<T>::max()));
    }
  }
  if (!ok) usage_error("GgufWriter: key {}: value {} does not fit the forced integer type", key, v.dump());
  if (v.is_number_unsigned()) put<T>(out, T(v.get<uint64_t>()));
  else put<T>(out, T(v.get<int64_t>()));
}

void put_scalar(std::string& out, GgufValueType type, const nlohmann::json& v, const std::string& key) {
  using T = GgufValueType;
  switch (type) {
    case T::UINT8: return put_int<uint8_t>(out, v, key);
    case T::INT8: return put_int<int8_t>(out, v, key);
    case T::UINT16: return put_int<uint16_t>(out, v, key);
    case T::INT16: return put_int<int16_t>(out, v, key);
    case T::UINT32: return put_int<uint32_t>(out, v, key);
    case T::INT32: return put_int<int32_t>(out, v, key);
    case T::UINT64: return put_int<uint64_t>(out, v, key);
    case T::INT64: return put_int<int64_t>(out, v, key);
    case T::FLOAT32:
    case T::FLOAT64:
      if (!v.is_number()) usage_error("GgufWriter: key {}: {} is not a number", key, v.dump());
      if (type == T::FLOAT32) put<float>(out, v.get<float>());
      else put<double>(out, v.get<double>());
      return;
    case T::BOOL:
      if (!v.is_boolean()) usage_error("GgufWriter: key {}: {} is not a bool", key, v.dump());
      put<uint8_t>(out, v.get<bool>() ? 1 : 0);
      return;
    case T::STRING:
      if (!v.is_string()) usage_error("GgufWriter: key {}: value is not a string", key);
      put_string(out, v.get_ref<const std::string&>());
      return;
    case T::ARRAY: break;
  }
  usage_error("GgufWriter: key {}: invalid value type {}", key, uint32_t(type));
}

}  // namespace

void GgufWriter::set(const std::string& key, const nlohmann::json& value, std::optional<GgufValueType> forced) {
  Kv kv{key, value, GgufValueType::ARRAY, GgufValueType::ARRAY};
  if (value.is_array()) {
    if (forced) {
      kv.elem_type = *forced;
    } else if (value.empty()) {
      kv.elem_type = kEmptyArrayType;
    } else {
      kv.elem_type = infer_scalar(value[0], key);
      for (const auto& e : value) {
        if (e.is_array()) usage_error("GgufWriter: key {}: nested arrays are not supported", key);
        kv.elem_type = widen(kv.elem_type, infer_scalar(e, key), key);
      }
    }
    if (kv.elem_type == GgufValueType::ARRAY) usage_error("GgufWriter: key {}: nested arrays are not supported", key);
    std::string probe;  // validates every element against its type now, not at write time
    for (const auto& e : value) put_scalar(probe, kv.elem_type, e, key);
  } else {
    kv.type = forced ? *forced : infer_scalar(value, key);
    std::string probe;
    put_scalar(probe, kv.type, value, key);
  }
  for (auto& existing : kvs_) {
    if (existing.key == key) {
      existing = std::move(kv);
      return;
    }
  }
  kvs_.push_back(std::move(kv));
}

size_t GgufWriter::tensor_bytes(const std::string& name, GgmlType type, const std::vector<int64_t>& ne) {
  if (ne.empty() || ne.size() > 4) usage_error("GgufWriter: tensor {}: needs 1 to 4 dimensions", name);
  size_t expected = ggml_row_bytes(type, ne[0]);
  for (size_t d = 1; d < ne.size(); ++d) expected *= size_t(ne[d]);
  return expected;
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                            std::span<const uint8_t> bytes) {
  const size_t expected = tensor_bytes(name, type, ne);
  if (expected != bytes.size())
    usage_error("GgufWriter: tensor {}: type {} with these dimensions needs {} bytes, got {}", name,
                ggml_type_name(type), expected, bytes.size());
  for (const auto& t : tensors_)
    if (t.name == name) usage_error("GgufWriter: tensor {} added twice", name);
  tensors_.push_back({name, type, std::move(ne), std::vector<uint8_t>(bytes.begin(), bytes.end()), bytes.size(), {}});
}

void GgufWriter::add_tensor_lazy(const std::string& name, GgmlType type, std::vector<int64_t> ne, Fill fill) {
  const size_t n = tensor_bytes(name, type, ne);
  for (const auto& t : tensors_)
    if (t.name == name) usage_error("GgufWriter: tensor {} added twice", name);
  tensors_.push_back({name, type, std::move(ne), {}, n, std::move(fill)});
}

void GgufWriter::add_tensor_f32(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                                std::span<const float> values) {
  std::vector<uint8_t> bytes;
  if (type == GgmlType::F32) {
    bytes.resize(values.size() * 4);
    std::memcpy(bytes.data(), values.data(), bytes.size());
  } else if (type == GgmlType::F16 || type == GgmlType::BF16) {
    bytes.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t h = type == GgmlType::F16 ? float_to_fp16(values[i]) : float_to_bf16(values[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  } else {
    usage_error("GgufWriter: tensor {}: add_tensor_f32 takes F32, F16 or BF16, not {}", name, ggml_type_name(type));
  }
  add_tensor(name, type, std::move(ne), bytes);
}

void GgufWriter::set_alignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    usage_error("GgufWriter: alignment {} is not a power of two", alignment);
  alignment_ = alignment;
  set("general.alignment", alignment, GgufValueType::UINT32);
}

std::string GgufWriter::header() const {
  std::string out;
  put<uint32_t>(out, 0x46554747);  // "GGUF"
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kvs_.size());
  for (const auto& kv : kvs_) {
    put_string(out, kv.key);
    put<uint32_t>(out, uint32_t(kv.type));
    if (kv.type == GgufValueType::ARRAY) {
      put<uint32_t>(out, uint32_t(kv.elem_type));
      put<uint64_t>(out, kv.value.size());
      for (const auto& e : kv.value) put_scalar(out, kv.elem_type, e, kv.key);
    } else {
      put_scalar(out, kv.type, kv.value, kv.key);
    }
  }
  auto padded = [&](uint64_t n) { return (n + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, uint32_t(t.ne.size()));
    for (int64_t d : t.ne) put<uint64_t>(out, uint64_t(d));
    put<uint32_t>(out, uint32_t(t.type));
    put<uint64_t>(out, offset);
    offset = padded(offset + t.nbytes);
  }
  out.resize(padded(out.size()), '\0');
  return out;
}

std::string GgufWriter::bytes() const {
  auto padded = [&](uint64_t n) { return (n + alignment_ - 1) / alignment_ * alignment_; };
  std::string out = header();
  std::vector<uint8_t> buf;
  for (const auto& t : tensors_) {
    if (t.fill) {
      buf.assign(t.nbytes, 0);
      t.fill(buf);
      out.append(reinterpret_cast<const char*>(buf.data()), buf.size());
    } else {
      out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
    }
    out.resize(padded(out.size()), '\0');
  }
  return out;
}

void GgufWriter::write(const std::string& path) const {
  const bool lazy = std::any_of(tensors_.begin(), tensors_.end(), [](const Tensor& t) { return bool(t.fill); });
  if (!lazy) return write_file_atomic(path, bytes());
  // Streamed: header, then one tensor at a time, into a temporary file renamed over path.
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) usage_error("{}: cannot create: {}", tmp, std::strerror(errno));
  auto put_bytes = [&](const void* p, size_t n) {
    if (n > 0 && std::fwrite(p, 1, n, f) != n) {
      std::fclose(f);
      std::remove(tmp.c_str());
      runtime_error("{}: write failed (disk full?): {}", path, std::strerror(errno));
    }
  };
  const std::string head = header();
  put_bytes(head.data(), head.size());
  uint64_t written = 0;
  std::vector<uint8_t> buf;
  const std::vector<uint8_t> zeros(alignment_, 0);
  for (const auto& t : tensors_) {
    if (t.fill) {
      buf.assign(t.nbytes, 0);
      t.fill(buf);
      put_bytes(buf.data(), buf.size());
    } else {
      put_bytes(t.bytes.data(), t.bytes.size());
    }
    written += t.nbytes;
    const uint64_t pad = (alignment_ - written % alignment_) % alignment_;
    put_bytes(zeros.data(), pad);
    written += pad;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    runtime_error("{}: write failed (disk full?): {}", path, std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) runtime_error("{}: cannot rename {} over it", path, tmp);
}

}  // namespace kvaudit::io
