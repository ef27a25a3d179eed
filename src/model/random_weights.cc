#include "model/random_weights.h"

#include <cmath>
#include <string_view>

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

}  // namespace

float hash_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  const uint64_t r = mix64(mix64(seed ^ mix64(stream)) + index * 0x9e3779b97f4a7c15ull);
  // Top 24 bits -> [0, 1) exactly representable, then to [-1, 1).
  return float(r >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

void fill_random_weights(const ModelConfig& c, const ArchSpec& a, uint64_t seed, Weights& w) {
  for (const PartRef& p : weight_parts(c, a, w)) {
    int64_t n = 1;
    for (int64_t d : p.shape) n *= d;
    const uint64_t stream = name_hash(hf_tensor_name(p.part, p.layer, a));
    float scale, offset = 0.0f;
    if (is_norm(p.part)) {
      scale = 0.1f;
      offset = a.norm == NormKind::kRmsOnePlusWeight ? 0.0f : 1.0f;
    } else if (p.part == Part::kEmbed) {
      scale = 1.0f;
    } else if (p.part == Part::kBq || p.part == Part::kBk || p.part == Part::kBv) {
      scale = 0.1f;
    } else {
      scale = 1.0f / std::sqrt(float(p.shape.back()));  // fan_in = in_features
    }
    p.dst->resize(size_t(n));
    float* out = p.dst->data();
    for (int64_t i = 0; i < n; ++i) out[i] = offset + scale * hash_uniform(seed, stream, uint64_t(i));
  }
}

}  // namespace kvaudit::model
