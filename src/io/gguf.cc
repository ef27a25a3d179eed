#include "io/gguf.h"

#include <cstring>

#include "core/error.h"

namespace kvaudit::io {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;   // when general.alignment is absent
constexpr int kMaxDims = 4;                  // ggml tensors have at most 4 dimensions
constexpr int kMaxArrayDepth = 8;            // arrays of arrays; deeper nesting is corrupt input
// Smallest possible encodings, used to reject counts the remaining bytes cannot hold before
// anything is allocated for them.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;          // empty key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, n_dims, type, offset

// Bytes of a fixed-size value type, 0 for STRING/ARRAY, -1 for unknown ids.
int value_size(uint32_t type) {
  switch (GgufValueType(type)) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16:
    case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
    case GgufValueType::FLOAT64: return 8;
    case GgufValueType::STRING:
    case GgufValueType::ARRAY: return 0;
  }
  return -1;
}

// Bounds-checked little-endian reader over the mapping; every failure names the file and what
// was being read.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, size_t size) : path_(path), data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining())
      usage_error("{}: corrupt GGUF: {} has length {} at offset {}, past the end of the file ({} bytes)", path_,
                  what, len, pos_ - 8, size_);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      usage_error("{}: truncated GGUF: {} at offset {} needs {} bytes, {} left", path_, what, pos_, n, remaining());
  }

  const std::string& path() const { return path_; }

 private:
  const std::string& path_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

nlohmann::json read_scalar(Cursor& c, GgufValueType type, const std::string& key) {
  switch (type) {
    case GgufValueType::UINT8: return c.read<uint8_t>("a uint8 value");
    case GgufValueType::INT8: return c.read<int8_t>("an int8 value");
    case GgufValueType::UINT16: return c.read<uint16_t>("a uint16 value");
    case GgufValueType::INT16: return c.read<int16_t>("an int16 value");
    case GgufValueType::UINT32: return c.read<uint32_t>("a uint32 value");
    case GgufValueType::INT32: return c.read<int32_t>("an int32 value");
    case GgufValueType::FLOAT32: return c.read<float>("a float32 value");
    case GgufValueType::UINT64: return c.read<uint64_t>("a uint64 value");
    case GgufValueType::INT64: return c.read<int64_t>("an int64 value");
    case GgufValueType::FLOAT64: return c.read<double>("a float64 value");
    case GgufValueType::BOOL: {
      const uint8_t b = c.read<uint8_t>("a bool value");
      if (b > 1) usage_error("{}: corrupt GGUF: key {} has bool value {}", c.path(), key, b);
      return b == 1;
    }
    case GgufValueType::STRING: return c.read_string("a string value");
    case GgufValueType::ARRAY: break;
  }
  usage_error("{}: corrupt GGUF: key {} has value type {}", c.path(), key, uint32_t(type));
}

nlohmann::json read_value(Cursor& c, uint32_t type_id, const std::string& key, int depth) {
  if (value_size(type_id) < 0) usage_error("{}: corrupt GGUF: key {} has unknown value type {}", c.path(), key, type_id);
  const auto type = GgufValueType(type_id);
  if (type != GgufValueType::ARRAY) return read_scalar(c, type, key);
  if (depth >= kMaxArrayDepth) usage_error("{}: corrupt GGUF: key {} nests arrays deeper than {}", c.path(), key, kMaxArrayDepth);
  const uint32_t elem_type = c.read<uint32_t>("an array element type");
  const int elem_size = value_size(elem_type);
  if (elem_size < 0) usage_error("{}: corrupt GGUF: key {} is an array of unknown value type {}", c.path(), key, elem_type);
  const uint64_t count = c.read<uint64_t>("an array length");
  // A string takes at least its 8-byte length, an array at least 12 bytes (type + count).
  const uint64_t min_elem = elem_size > 0 ? uint64_t(elem_size) : (elem_type == uint32_t(GgufValueType::STRING) ? 8 : 12);
  if (count > c.remaining() / min_elem)
    usage_error("{}: corrupt GGUF: key {} claims {} array elements, more than the {} bytes left can hold", c.path(),
                key, count, c.remaining());
  nlohmann::json arr = nlohmann::json::array();
  auto& vec = arr.get_ref<nlohmann::json::array_t&>();
  vec.reserve(size_t(count));
  for (uint64_t i = 0; i < count; ++i) vec.push_back(read_value(c, elem_type, key, depth + 1));
  return arr;
}

}  // namespace

GgufFile::GgufFile(const std::string& path) : map_(path) {}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile(path));
  f->parse();
  return f;
}

void GgufFile::parse() {
  const std::string& path = map_.path();
  Cursor c(path, map_.data(), map_.size());
  if (map_.size() < 4 || c.read<uint32_t>("the magic") != kGgufMagic)
    usage_error("{}: not a GGUF file (bad magic)", path);
  version_ = c.read<uint32_t>("the version");
  if (version_ != 2 && version_ != 3)
    usage_error("{}: unsupported GGUF version {} (supported: 2, 3; big-endian files are not supported)", path,
                version_);
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  if (n_kv > c.remaining() / kMinKvBytes)
    usage_error("{}: corrupt GGUF: {} metadata entries cannot fit in the {} bytes left", path, n_kv, c.remaining());

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("a metadata key");
    const uint32_t type = c.read<uint32_t>("a metadata value type");
    nlohmann::json value = read_value(c, type, key, 0);
    if (metadata_.contains(key)) usage_error("{}: corrupt GGUF: metadata key {} appears twice", path, key);
    value_types_[key] = GgufValueType(type);
    metadata_[key] = std::move(value);
  }

  if (const auto it = metadata_.find("general.alignment"); it != metadata_.end()) {
    if (value_types_["general.alignment"] != GgufValueType::UINT32)
      usage_error("{}: corrupt GGUF: general.alignment must be a uint32", path);
    const uint32_t a = it->get<uint32_t>();
    if (a == 0 || (a & (a - 1)) != 0)
      usage_error("{}: corrupt GGUF: general.alignment {} is not a power of two", path, a);
    alignment_ = a;
  } else {
    alignment_ = kDefaultAlignment;
  }

  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    usage_error("{}: corrupt GGUF: {} tensor infos cannot fit in the {} bytes left", path, n_tensors, c.remaining());
  tensors_.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t{};
    t.name = c.read_string("a tensor name");
    const uint32_t n_dims = c.read<uint32_t>("a tensor's dimension count");
    if (n_dims > uint32_t(kMaxDims))
      usage_error("{}: corrupt GGUF: tensor {} has {} dimensions (at most {})", path, t.name, n_dims, kMaxDims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("a tensor dimension");
      if (ne > uint64_t(INT64_MAX)) usage_error("{}: corrupt GGUF: tensor {} has dimension {}", path, t.name, ne);
      t.ne.push_back(int64_t(ne));
    }
    const uint32_t type_id = c.read<uint32_t>("a tensor type");
    const auto traits = ggml_type_traits(type_id);
    if (!traits) usage_error("{}: corrupt GGUF: tensor {} has unknown ggml type id {}", path, t.name, type_id);
    t.type = traits->type;
    t.offset = c.read<uint64_t>("a tensor offset");
    if (t.offset % alignment_ != 0)
      usage_error("{}: corrupt GGUF: tensor {} offset {} is not a multiple of the alignment {}", path, t.name,
                  t.offset, alignment_);
    // nbytes = (ne[0] / block) * type_size * ne[1] * ..., with overflow checks.
    const int64_t ne0 = t.ne.empty() ? 1 : t.ne[0];
    if (ne0 % traits->block_size != 0)
      usage_error("{}: corrupt GGUF: tensor {} of type {} has ne[0] = {}, not a multiple of the block size {}", path,
                  t.name, traits->name, ne0, traits->block_size);
    uint64_t nbytes = uint64_t(ne0 / traits->block_size) * traits->type_size;
    bool overflow = __builtin_mul_overflow(uint64_t(ne0 / traits->block_size), traits->type_size, &nbytes);
    uint64_t numel = uint64_t(ne0);
    for (size_t d = 1; d < t.ne.size(); ++d) {
      overflow |= __builtin_mul_overflow(nbytes, uint64_t(t.ne[d]), &nbytes);
      overflow |= __builtin_mul_overflow(numel, uint64_t(t.ne[d]), &numel);
    }
    if (overflow || numel > uint64_t(INT64_MAX) || nbytes > map_.size())
      usage_error("{}: corrupt GGUF: tensor {} has an impossible size", path, t.name);
    t.nbytes = size_t(nbytes);
    if (!index_.emplace(t.name, tensors_.size()).second)
      usage_error("{}: corrupt GGUF: tensor name {} appears twice", path, t.name);
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment after the tensor infos.
  const uint64_t data_start = (uint64_t(c.pos()) + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t data_size = data_start <= map_.size() ? map_.size() - data_start : 0;
  for (auto& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      usage_error("{}: truncated GGUF: tensor {} data [{}, {}) lies past the end of the file ({} data bytes)", path,
                  t.name, t.offset, t.offset + t.nbytes, data_size);
    t.data = map_.data() + data_start + t.offset;
  }
  used_ = std::make_unique<std::atomic<bool>[]>(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) used_[i].store(false, std::memory_order_relaxed);
}

GgufValueType GgufFile::value_type(const std::string& key) const {
  const auto it = value_types_.find(key);
  if (it == value_types_.end()) usage_error("{}: no metadata key {}", path(), key);
  return it->second;
}

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  if (used_) used_[it->second].store(true, std::memory_order_relaxed);
  return &tensors_[it->second];
}

std::vector<std::string> GgufFile::unused_tensors() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (!used_ || !used_[i].load(std::memory_order_relaxed)) out.push_back(tensors_[i].name);
  return out;
}

std::vector<std::string> GgufFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

std::optional<TensorInfo> GgufFile::info(const std::string& name) const {
  const GgufTensorInfo* t = find(name);
  if (t == nullptr) return std::nullopt;
  return TensorInfo{t->name, std::vector<int64_t>(t->ne.rbegin(), t->ne.rend()), ggml_type_name(t->type)};
}

void GgufFile::read_f32(const std::string& name, std::span<float> out) const {
  const GgufTensorInfo* t = find(name);
  if (t == nullptr) usage_error("{}: no tensor named {}", path(), name);
  if (int64_t(out.size()) != t->numel())
    usage_error("{}: tensor {} has {} elements, the caller expects {}", path(), name, t->numel(), out.size());
  if (!ggml_traits(t->type).dequantizable)
    usage_error("{}: tensor {} has ggml type {}, which kvaudit cannot dequantize", path(), name,
                ggml_type_name(t->type));
  dequantize_row(t->type, t->data, out.data(), t->numel());
}

std::optional<RawTensor> GgufFile::raw(const std::string& name) const {
  const GgufTensorInfo* t = find(name);
  if (t == nullptr || !ggml_traits(t->type).dequantizable) return std::nullopt;
  return RawTensor{t->type, t->data, t->nbytes};
}

std::string GgufFile::describe() const { return path(); }

}  // namespace kvaudit::io
