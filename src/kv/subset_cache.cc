#include "kv/subset_cache.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kvaudit::kv {
namespace {

class SubsetCache final : public LayerCache {
 public:
  SubsetCache(ChannelSubset s, CacheGeometry g) : s_(std::move(s)), width_(g.width()) {}

  int64_t append(const float* rows, int64_t n) override {
    const int64_t old = size();
    if (old == 0) scales_ = fit_subset_scales(s_, rows, n, width_);
    data_.insert(data_.end(), rows, rows + n * width_);
    fake_quantize_subset(s_, scales_, data_.data() + old * width_, n, width_);
    return old;
  }
  int64_t size() const override { return int64_t(data_.size()) / width_; }
  const float* rows() const override { return data_.data(); }
  size_t bytes() const override {
    return size_t(std::llround(subset_cache_bytes(s_, {1, width_}, size())));
  }
  size_t resident_bytes() const override { return data_.capacity() * sizeof(float); }

 private:
  ChannelSubset s_;
  int width_;
  std::vector<float> scales_;  // [|S|], fixed at the prefill
  std::vector<float> data_;    // [size, width], dequantized
};

float qmax_of(int bits) { return float((1 << (bits - 1)) - 1); }

}  // namespace

SubsetScale parse_subset_scale(const std::string& s) {
  if (s == "tensor") return SubsetScale::kTensor;
  if (s == "channel") return SubsetScale::kChannel;
  usage_error("channel subset: \"scale\" must be \"tensor\" or \"channel\", got \"{}\"", s);
}

std::string to_string(SubsetScale s) { return s == SubsetScale::kTensor ? "tensor" : "channel"; }

std::vector<float> fit_subset_scales(const ChannelSubset& s, const float* rows, int64_t n, int width) {
  std::vector<float> amax(s.channels.size(), 0.0f);
  for (int64_t t = 0; t < n; ++t)
    for (size_t i = 0; i < s.channels.size(); ++i)
      amax[i] = std::max(amax[i], std::fabs(rows[t * width + s.channels[i]]));
  if (s.scale == SubsetScale::kTensor) {
    const float m = amax.empty() ? 0.0f : *std::max_element(amax.begin(), amax.end());
    std::fill(amax.begin(), amax.end(), m);
  }
  for (float& a : amax) a /= qmax_of(s.bits);  // SPEC.md §3 sym: s = max|x| / (2^(B-1) - 1)
  return amax;
}

void fake_quantize_subset(const ChannelSubset& s, const std::vector<float>& scales, float* rows, int64_t n,
                          int width) {
  const float qmax = qmax_of(s.bits), qmin = -qmax - 1;
  for (int64_t t = 0; t < n; ++t)
    for (size_t i = 0; i < s.channels.size(); ++i) {
      float& x = rows[t * width + s.channels[i]];
      // A zero scale means S held only zeros at the prefill: the range is {0}, later values saturate there.
      if (scales[i] == 0.0f) { x = 0.0f; continue; }
      const float q = std::clamp(std::nearbyint(x / scales[i]), qmin, qmax);  // round half to even
      x = q * scales[i];
    }
}

double subset_cache_bytes(const ChannelSubset& s, CacheGeometry g, int64_t tokens) {
  if (tokens <= 0) return 0.0;
  const double k = double(s.channels.size());
  const double codes = std::ceil(k * s.bits / 8.0);
  const double n_scales = s.scale == SubsetScale::kTensor ? (k > 0 ? 1.0 : 0.0) : k;
  return double(tokens) * (codes + 2.0 * (g.width() - k)) + 4.0 * n_scales;
}

std::unique_ptr<LayerCache> make_subset_cache(const ChannelSubset& s, CacheGeometry g) {
  if (s.bits < 2 || s.bits > 8) usage_error("channel subset: bits must be 2..8, got {}", s.bits);
  for (size_t i = 0; i < s.channels.size(); ++i) {
    const int c = s.channels[i];
    if (c < 0 || c >= g.width())
      usage_error("channel subset: channel {} is outside the layer's {} channels", c, g.width());
    if (i > 0 && c <= s.channels[i - 1]) usage_error("channel subset: channels must be sorted and unique");
  }
  return std::make_unique<SubsetCache>(s, g);
}

}  // namespace kvaudit::kv
