#include "model/random_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>

#include "core/error.h"
#include "core/half.h"
#include "core/parallel.h"
#include "model/weight_parts.h"

namespace kvaudit::model {

namespace {

// splitmix64's finaliser: a bijective mix with good avalanche, enough for benchmark weights.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// FNV-1a of the tensor's HF name: the stream id, stable across runs and platforms.
uint64_t name_hash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char ch : s) {
    h ^= uint8_t(ch);
    h *= 0x100000001b3ull;
  }
  return h;
}

void put_f16(uint8_t* p, float v) {
  const uint16_t h = float_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// Offsets of a block's fp16 scale fields (io/ggml_quants.h layouts) and their values for `scale`:
// d so that |d * code * sub-scale| stays near scale, a negative offset (m or dmin) centring
// unsigned codes. Every other byte (codes, packed sub-block scales) is random.
void set_block_scales(io::GgmlType t, uint8_t* b, float s) {
  using io::GgmlType;
  switch (t) {
    case GgmlType::Q8_0: put_f16(b, s / 127.0f); return;
    case GgmlType::Q4_0: put_f16(b, s / 8.0f); return;
    case GgmlType::Q5_0: put_f16(b, s / 16.0f); return;
    case GgmlType::Q4_1: put_f16(b, 2.0f * s / 15.0f), put_f16(b + 2, -s); return;
    case GgmlType::Q5_1: put_f16(b, 2.0f * s / 31.0f), put_f16(b + 2, -s); return;
    case GgmlType::Q2_K: put_f16(b + 80, 2.0f * s / 45.0f), put_f16(b + 82, s / 15.0f); return;
    case GgmlType::Q3_K: put_f16(b + 108, s / 128.0f); return;
    case GgmlType::Q4_K: put_f16(b, 2.0f * s / 945.0f), put_f16(b + 2, s / 63.0f); return;
    case GgmlType::Q5_K: put_f16(b, 2.0f * s / 1953.0f), put_f16(b + 2, s / 63.0f); return;
    case GgmlType::Q6_K: put_f16(b + 208, s / 4064.0f); return;
    default: usage_error("random weights: ggml type {} is not supported", io::ggml_type_name(t));
  }
}

}  // namespace

std::vector<uint8_t> random_blocks(io::GgmlType t, int64_t rows, int64_t cols, float scale, uint64_t seed,
                                   uint64_t stream) {
  using io::GgmlType;
  const int64_t n = rows * cols;
  std::vector<uint8_t> out(io::ggml_row_bytes(t, cols) * size_t(rows));
  if (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = scale * hash_uniform(seed, stream, uint64_t(i));
      if (t == GgmlType::F32) {
        std::memcpy(out.data() + 4 * i, &v, 4);
      } else {
        const uint16_t h = t == GgmlType::F16 ? float_to_fp16(v) : float_to_bf16(v);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
    }
    return out;
  }
  const uint64_t base = mix64(seed ^ mix64(stream));
  for (size_t i = 0; i < out.size(); i += 8) {
    const uint64_t r = mix64(base + i * 0x9e3779b97f4a7c15ull);
    std::memcpy(out.data() + i, &r, std::min<size_t>(8, out.size() - i));
  }
  const size_t block = io::ggml_traits(t).type_size;
  for (size_t b = 0; b < out.size(); b += block) set_block_scales(t, out.data() + b, scale);
  return out;
}

float hash_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  const uint64_t r = mix64(mix64(seed ^ mix64(stream)) + index * 0x9e3779b97f4a7c15ull);
  // Top 24 bits -> [0, 1) exactly representable, then to [-1, 1).
  return float(r >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

RandomRange random_range(const PartRef& p, const ArchSpec& a) {
  if (is_norm(p.part)) return {0.1f, a.norm == NormKind::kRmsOnePlusWeight ? 0.0f : 1.0f};
  if (p.part == Part::kEmbed) return {1.0f, 0.0f};
  if (p.part == Part::kBq || p.part == Part::kBk || p.part == Part::kBv) return {0.1f, 0.0f};
  return {1.0f / std::sqrt(float(p.shape.back())), 0.0f};  // fan_in = in_features
}

uint64_t random_stream(const PartRef& p, const ArchSpec& a) { return name_hash(hf_tensor_name(p.part, p.layer, a)); }

std::vector<float> random_values(const PartRef& p, const ArchSpec& a, uint64_t seed) {
  int64_t n = 1;
  for (int64_t d : p.shape) n *= d;
  const RandomRange r = random_range(p, a);
  const uint64_t stream = random_stream(p, a);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = r.offset + r.scale * hash_uniform(seed, stream, uint64_t(i));
  return v;
}

// The parts on all cores (each value depends on its index alone: the same weights): an 8B's 8 G
// values took ~16 s on one.
void fill_random_weights(const ModelConfig& c, const ArchSpec& a, uint64_t seed, Weights& w) {
  const std::vector<PartRef> parts = weight_parts(c, a, w);
  run_parallel(parts.size(), [&](size_t i) {
    const PartRef& p = parts[i];
    std::vector<float> v = random_values(p, a, seed);
    if (p.is_matrix())
      *p.mat = WeightMatrix::f32(std::move(v), p.shape[0], p.shape[1]);
    else
      *p.dst = std::move(v);
  });
}

}  // namespace kvaudit::model
