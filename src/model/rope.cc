// RoPE inverse frequencies, following transformers' modeling_rope_utils step by step in float32
// (its tensors are float32; Python scalars enter as float).
#include "model/rope.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kvaudit::model {

namespace {

constexpr double kPi = 3.14159265358979323846;

// base^(-(2i)/dim) for i < dim/2: `1.0 / (base ** (arange(0, dim, 2).float() / dim))`.
std::vector<float> default_inv_freq(float base, int dim) {
  std::vector<float> f(size_t(dim / 2));
  for (int i = 0; i < dim / 2; ++i) {
    const float e = float(2 * i) / float(dim);
    f[size_t(i)] = 1.0f / std::pow(base, e);
  }
  return f;
}

// Llama 3.1: wavelengths longer than original/low_freq_factor are divided by factor, shorter than
// original/high_freq_factor kept, and the band between interpolated smoothly.
void apply_llama3(const RopeScaling& r, std::vector<float>& f) {
  const float old_ctx = float(r.original_max_position);
  const float low_wavelen = old_ctx / r.low_freq_factor;
  const float high_wavelen = old_ctx / r.high_freq_factor;
  for (float& inv : f) {
    const float wavelen = float(2 * kPi) / inv;
    const float scaled = wavelen > low_wavelen ? inv / r.factor : inv;
    const float smooth = (old_ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    const float smoothed = (1.0f - smooth) * scaled / r.factor + smooth * scaled;
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    inv = medium ? smoothed : scaled;
  }
}

// YaRN: interpolation (inv/factor) for low frequencies, extrapolation (inv) for high ones, a
// linear ramp between the correction dimensions of beta_fast and beta_slow rotations.
void apply_yarn(const ModelConfig& c, std::vector<float>& f) {
  const RopeScaling& r = c.rope_scaling;
  const int dim = c.rotary_dim();
  const double base = c.rope_theta;
  const double orig = r.original_max_position > 0 ? r.original_max_position : c.max_position;
  auto correction_dim = [&](double rotations) {
    return (dim * std::log(orig / (rotations * 2 * kPi))) / (2 * std::log(base));
  };
  double low = std::floor(correction_dim(r.beta_fast));
  double high = std::ceil(correction_dim(r.beta_slow));
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high) high += 0.001;
  for (size_t i = 0; i < f.size(); ++i) {
    const float ramp = std::clamp((float(i) - float(low)) / float(high - low), 0.0f, 1.0f);
    const float extrapolation_factor = 1.0f - ramp;
    const float interpolation = f[i] / r.factor;  // 1 / (factor * pos_freq)
    f[i] = interpolation * (1.0f - extrapolation_factor) + f[i] * extrapolation_factor;
  }
}

}  // namespace

int rope_inv_freq_key(const ModelConfig& c, int64_t seq_len) {
  if (c.rope_scaling.type != RopeType::kLongrope) return 0;
  const int orig = c.rope_scaling.original_max_position > 0 ? c.rope_scaling.original_max_position : c.max_position;
  return seq_len > orig ? 1 : 0;
}

std::vector<float> rope_inv_freq(const ModelConfig& c, int64_t seq_len) {
  const int dim = c.rotary_dim();
  const RopeScaling& r = c.rope_scaling;
  std::vector<float> f = default_inv_freq(c.rope_theta, dim);
  switch (r.type) {
    case RopeType::kDefault:
    case RopeType::kDynamic:  // dynamic NTK equals default up to max_position
      break;
    case RopeType::kLinear:
      for (float& x : f) x /= r.factor;
      break;
    case RopeType::kLlama3:
      apply_llama3(r, f);
      break;
    case RopeType::kLongrope: {
      const std::vector<float>& ext = rope_inv_freq_key(c, seq_len) == 1 ? r.long_factor : r.short_factor;
      if (ext.size() != f.size())
        usage_error("longrope factors: {} entries for rotary_dim/2 = {}", ext.size(), f.size());
      // `1.0 / (ext_factors * base**(arange/dim))`
      for (size_t i = 0; i < f.size(); ++i) {
        const float e = float(2 * i) / float(dim);
        f[i] = 1.0f / (ext[i] * std::pow(c.rope_theta, e));
      }
      break;
    }
    case RopeType::kYarn:
      apply_yarn(c, f);
      break;
  }
  return f;
}

float rope_attention_scaling(const ModelConfig& c) {
  const RopeScaling& r = c.rope_scaling;
  if (r.attention_factor > 0) return r.attention_factor;
  if (r.type == RopeType::kLongrope) {
    // Phi3 (original max set): factor = max_position / original max, else rope_scaling.factor
    // over max_position; attention factor sqrt(1 + ln(factor) / ln(original max)).
    const bool has_orig = r.original_max_position > 0;
    const int orig = has_orig ? r.original_max_position : c.max_position;
    const double factor = has_orig ? double(c.max_position) / orig : double(r.factor);
    if (factor <= 1.0 || orig <= 1) return 1.0f;
    return float(std::sqrt(1 + std::log(factor) / std::log(double(orig))));
  }
  if (r.type == RopeType::kYarn) {
    if (r.factor <= 1) return 1.0f;
    return float(0.1 * std::log(double(r.factor)) + 1.0);  // get_mscale(factor)
  }
  return 1.0f;
}

}  // namespace kvaudit::model
