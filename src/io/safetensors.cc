#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/ranges.h>

#include "core/error.h"
#include "core/half.h"
#include "io/atomic_file.h"

namespace kvaudit::io {

namespace {

constexpr size_t kHeaderLengthBytes = 8;  // little-endian u64 before the JSON header

// Product of dims * elem_size, or false on overflow / negative dims.
bool checked_nbytes(const std::vector<int64_t>& shape, size_t elem_size, size_t& out) {
  uint64_t n = elem_size;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, uint64_t(d), &n)) return false;
  }
  out = size_t(n);
  return true;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::pair<const char*, size_t> kSizes[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"U64", 8}, {"I32", 4},
      {"U32", 4}, {"I16", 2}, {"U16", 2}, {"I8", 1},   {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1},
      {"F8_E5M2", 1}};
  for (const auto& [name, size] : kSizes)
    if (dtype == name) return size;
  return 0;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : map_(path) {
  const uint8_t* base = map_.data();
  const size_t size = map_.size();
  if (size < kHeaderLengthBytes)
    usage_error("{}: not a safetensors file: {} bytes, shorter than the 8-byte header length", path, size);
  uint64_t header_len;
  std::memcpy(&header_len, base, kHeaderLengthBytes);
  if (header_len > size - kHeaderLengthBytes)
    usage_error("{}: safetensors header length {} exceeds the file ({} bytes)", path, header_len, size);
  const auto* header_begin = reinterpret_cast<const char*>(base + kHeaderLengthBytes);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + header_len);
  } catch (const nlohmann::json::exception& e) {
    usage_error("{}: safetensors header is not valid JSON: {}", path, e.what());
  }
  if (!header.is_object()) usage_error("{}: safetensors header is not a JSON object", path);

  const uint8_t* data_section = base + kHeaderLengthBytes + header_len;
  const size_t data_size = size - kHeaderLengthBytes - header_len;
  std::vector<std::pair<size_t, size_t>> ranges;  // [begin, end) per tensor, for overlap checks
  metadata_ = nlohmann::json::object();
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) usage_error("{}: __metadata__ is not an object", path);
      metadata_ = entry;
      continue;
    }
    if (!entry.is_object()) usage_error("{}: tensor {}: header entry is not an object", path, name);
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string())
      usage_error("{}: tensor {}: missing or non-string dtype", path, name);
    if (shape_it == entry.end() || !shape_it->is_array())
      usage_error("{}: tensor {}: missing or non-array shape", path, name);
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned())
      usage_error("{}: tensor {}: data_offsets must be two non-negative integers", path, name);

    SafetensorsTensor t;
    t.name = name;
    t.dtype = dtype_it->get<std::string>();
    const size_t elem = safetensors_dtype_size(t.dtype);
    if (elem == 0) usage_error("{}: tensor {}: unknown dtype {}", path, name, t.dtype);
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned()) usage_error("{}: tensor {}: shape entries must be non-negative integers", path, name);
      const uint64_t v = d.get<uint64_t>();
      if (v > uint64_t(INT64_MAX)) usage_error("{}: tensor {}: dimension {} is too large", path, name, v);
      t.shape.push_back(int64_t(v));
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end || end > data_size)
      usage_error("{}: tensor {}: data_offsets [{}, {}) outside the data section of {} bytes", path, name, begin,
                  end, data_size);
    size_t expected = 0;
    if (!checked_nbytes(t.shape, elem, expected) || expected != end - begin)
      usage_error("{}: tensor {}: shape {} of {} needs {} bytes but data_offsets span {}", path, name,
                  shape_str(t.shape), t.dtype, expected, end - begin);
    t.data = data_section + begin;
    t.nbytes = size_t(end - begin);
    ranges.emplace_back(size_t(begin), size_t(end));
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  // Two tensors must not share bytes (the format forbids it; it signals a corrupt header).
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  for (size_t i = 1; i < order.size(); ++i) {
    const auto& prev = ranges[order[i - 1]];
    const auto& cur = ranges[order[i]];
    if (cur.first < prev.second && cur.first != cur.second && prev.first != prev.second)
      usage_error("{}: tensors {} and {} overlap in the data section", path, tensors_[order[i - 1]].name,
                  tensors_[order[i]].name);
  }
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::unique_ptr<SafetensorsSource> SafetensorsSource::open(const std::string& path) {
  namespace fs = std::filesystem;
  std::unique_ptr<SafetensorsSource> src(new SafetensorsSource());
  src->root_ = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) usage_error("{}: no such file or directory", path);

  auto add_file = [&](const std::string& file) {
    src->files_.push_back(std::make_unique<SafetensorsFile>(file));
    return src->files_.size() - 1;
  };
  auto add_all = [&](size_t fi) {
    const auto& ts = src->files_[fi]->tensors();
    for (size_t ti = 0; ti < ts.size(); ++ti) src->where_[ts[ti].name] = {fi, ti};
  };

  if (!fs::is_directory(path, ec)) {
    add_all(add_file(path));
    return src;
  }
  const fs::path dir(path);
  const fs::path index_path = dir / "model.safetensors.index.json";
  const fs::path single_path = dir / "model.safetensors";
  if (fs::exists(index_path, ec)) {
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(read_file(index_path.string()));
    } catch (const nlohmann::json::exception& e) {
      usage_error("{}: not valid JSON: {}", index_path.string(), e.what());
    }
    const auto wm = index.is_object() ? index.find("weight_map") : index.end();
    if (wm == index.end() || !wm->is_object())
      usage_error("{}: missing \"weight_map\" object", index_path.string());
    std::map<std::string, size_t> shard_index;  // shard file name -> files_ index
    for (const auto& [name, shard] : wm->items()) {
      if (!shard.is_string()) usage_error("{}: weight_map[{}] is not a string", index_path.string(), name);
      const std::string shard_name = shard.get<std::string>();
      if (shard_name.empty() || fs::path(shard_name).is_absolute() || shard_name.find("..") != std::string::npos)
        usage_error("{}: weight_map[{}] names an invalid shard \"{}\"", index_path.string(), name, shard_name);
      auto it = shard_index.find(shard_name);
      if (it == shard_index.end()) {
        const fs::path shard_path = dir / shard_name;
        if (!fs::is_regular_file(shard_path, ec))
          usage_error("{}: shard {} (for tensor {}) is missing", index_path.string(), shard_path.string(), name);
        it = shard_index.emplace(shard_name, add_file(shard_path.string())).first;
      }
      const auto& file = *src->files_[it->second];
      const SafetensorsTensor* t = file.find(name);
      if (t == nullptr)
        usage_error("{}: tensor {} is listed in the index but absent from shard {}", index_path.string(), name,
                    file.path());
      src->where_[name] = {it->second, size_t(t - file.tensors().data())};
    }
    return src;
  }
  if (fs::exists(single_path, ec)) {
    add_all(add_file(single_path.string()));
    return src;
  }
  usage_error("{}: directory has neither model.safetensors nor model.safetensors.index.json", path);
}

std::vector<std::string> SafetensorsSource::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [name, _] : where_) out.push_back(name);
  return out;
}

std::optional<TensorInfo> SafetensorsSource::info(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) return std::nullopt;
  const auto& t = files_[it->second.first]->tensors()[it->second.second];
  return TensorInfo{t.name, t.shape, t.dtype};
}

void SafetensorsSource::read_f32(const std::string& name, std::span<float> out) const {
  const auto it = where_.find(name);
  if (it == where_.end()) usage_error("{}: no tensor named {}", describe(), name);
  const auto& file = *files_[it->second.first];
  const auto& t = file.tensors()[it->second.second];
  const size_t elem = safetensors_dtype_size(t.dtype);
  const size_t n = t.nbytes / elem;
  if (out.size() != n)
    usage_error("{}: tensor {} has {} elements, the caller expects {}", file.path(), name, n, out.size());
  if (t.dtype == "F32") {
    std::memcpy(out.data(), t.data, t.nbytes);
  } else if (t.dtype == "F16" || t.dtype == "BF16") {
    const bool is_bf16 = t.dtype == "BF16";
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      out[i] = is_bf16 ? bf16_to_float(h) : fp16_to_float(h);
    }
  } else {
    usage_error("{}: tensor {} has dtype {}; only F32, F16 and BF16 can be read as weights", file.path(), name,
                t.dtype);
  }
}

std::optional<RawTensor> SafetensorsSource::raw(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) return std::nullopt;
  const auto& t = files_[it->second.first]->tensors()[it->second.second];
  // Little-endian host and file: the stored bytes are ggml's F32/F16/BF16 rows as they are.
  if (t.dtype == "F32") return RawTensor{GgmlType::F32, t.data, t.nbytes};
  if (t.dtype == "F16") return RawTensor{GgmlType::F16, t.data, t.nbytes};
  if (t.dtype == "BF16") return RawTensor{GgmlType::BF16, t.data, t.nbytes};
  return std::nullopt;
}

std::string SafetensorsSource::describe() const {
  if (files_.size() == 1) return files_[0]->path();
  return fmt::format("{} ({} shards)", root_, files_.size());
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                       const nlohmann::json& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  std::set<std::string> seen;
  for (const auto& t : tensors) {
    const size_t elem = safetensors_dtype_size(t.dtype);
    if (elem == 0) usage_error("{}: tensor {}: unknown dtype {}", path, t.name, t.dtype);
    size_t expected = 0;
    if (!checked_nbytes(t.shape, elem, expected) || expected != t.bytes.size())
      usage_error("{}: tensor {}: shape {} of {} needs {} bytes, got {}", path, t.name, shape_str(t.shape),
                  t.dtype, expected, t.bytes.size());
    if (!seen.insert(t.name).second) usage_error("{}: tensor {} given twice", path, t.name);
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  std::string out;
  out.reserve(kHeaderLengthBytes + json.size() + offset);
  const uint64_t len = json.size();
  out.append(reinterpret_cast<const char*>(&len), kHeaderLengthBytes);
  out += json;
  for (const auto& t : tensors) out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  write_file_atomic(path, out);
}

SafetensorsWriteTensor make_safetensors_tensor(const std::string& name, const std::string& dtype,
                                               std::vector<int64_t> shape, std::span<const float> values) {
  SafetensorsWriteTensor t{name, dtype, std::move(shape), {}};
  if (dtype == "F32") {
    t.bytes.resize(values.size() * 4);
    std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  } else if (dtype == "F16" || dtype == "BF16") {
    t.bytes.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t h = dtype == "F16" ? float_to_fp16(values[i]) : float_to_bf16(values[i]);
      std::memcpy(t.bytes.data() + 2 * i, &h, 2);
    }
  } else {
    usage_error("make_safetensors_tensor: tensor {}: dtype must be F32, F16 or BF16, got {}", name, dtype);
  }
  return t;
}

}  // namespace kvaudit::io
