#include "kv/schemes/nuq.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/half.h"

namespace kvaudit::kv {
namespace {

constexpr int kKmeansIterations = 25;  // Lloyd converges in well under this on <= 1024 sorted values

// 1-D k-means on sorted values: quantile initialisation, then Lloyd iterations with assignments by
// midpoints. Returns k ascending centroids.
std::vector<float> kmeans_1d(const std::vector<float>& v, int k) {
  std::vector<float> c(k);
  const int64_t n = int64_t(v.size());
  for (int i = 0; i < k; ++i) c[i] = v[std::min<int64_t>(n - 1, int64_t((i + 0.5) / k * double(n)))];
  for (int it = 0; it < kKmeansIterations; ++it) {
    std::vector<double> sum(k, 0.0);
    std::vector<int64_t> cnt(k, 0);
    int j = 0;
    for (int64_t i = 0; i < n; ++i) {
      while (j + 1 < k && v[i] > 0.5f * (c[j] + c[j + 1])) ++j;
      sum[j] += v[i];
      ++cnt[j];
    }
    for (int i = 0; i < k; ++i)
      if (cnt[i] > 0) c[i] = float(sum[i] / double(cnt[i]));
    std::sort(c.begin(), c.end());
  }
  return c;
}

}  // namespace

int nuq_nearest(const float* levels, int n, float x) {
  const float* it = std::lower_bound(levels, levels + n, x);  // first level >= x
  if (it == levels) return 0;
  if (it == levels + n) return n - 1;
  const int hi = int(it - levels);
  return x - levels[hi - 1] <= levels[hi] - x ? hi - 1 : hi;
}

NuqTables fit_nuq(const ChannelStats& stats, const std::vector<int>& channels, int bits, double sparse) {
  const int64_t rows = stats.n_sample_rows();
  if (rows == 0) usage_error("nuq{}: the calibration holds no sample rows for this layer", bits);
  const int k = 1 << bits;
  NuqTables t;
  t.bits = bits;
  std::vector<float> col(rows);
  for (int ch : channels) {
    for (int64_t r = 0; r < rows; ++r) col[r] = stats.samples[r * stats.width + ch];
    // A total order (-0 before +0, NaN at the ends): the sorted column, and so the codebook, is the
    // same whether the samples come from the engine or from a cache file that stores them sorted.
    std::sort(col.begin(), col.end(), [](float a, float b) { return float_order_key(a) < float_order_key(b); });
    float lo = -INFINITY, hi = INFINITY;
    int64_t a = 0, b = rows;  // inliers [a, b)
    if (sparse > 0) {
      a = std::min<int64_t>(rows - 1, int64_t(std::floor(sparse / 2 * double(rows))));
      b = std::max<int64_t>(a + 1, int64_t(std::ceil((1 - sparse / 2) * double(rows))));
      lo = col[a];
      hi = col[b - 1];
    }
    std::vector<float> inliers(col.begin() + a, col.begin() + b);
    std::vector<float> c = kmeans_1d(inliers, k);
    for (float& x : c) x = round_fp16(x);
    std::sort(c.begin(), c.end());
    t.levels.insert(t.levels.end(), c.begin(), c.end());
    t.lo.push_back(lo);
    t.hi.push_back(hi);
  }
  return t;
}

namespace {

class NuqRows final : public RowQuantizer {
 public:
  explicit NuqRows(NuqTables t) : t_(std::move(t)), k_(1 << t_.bits), width_(int(t_.lo.size())) {}
  int code_bits() const override { return t_.bits; }
  int n_params() const override { return 0; }
  void quantize(const float* x, uint8_t* codes, float*, std::vector<Outlier>* sparse) const override {
    for (int c = 0; c < width_; ++c) {
      if (x[c] < t_.lo[c] || x[c] > t_.hi[c]) {  // dense-and-sparse: kept exact (fp16)
        sparse->push_back({uint16_t(c), round_fp16(x[c])});
        codes[c] = 0;
      } else {
        codes[c] = uint8_t(nuq_nearest(&t_.levels[size_t(c) * k_], k_, x[c]));
      }
    }
  }
  void dequantize(const uint8_t* codes, const float*, float* out) const override {
    for (int c = 0; c < width_; ++c) out[c] = t_.levels[size_t(c) * k_ + codes[c]];
  }

 private:
  NuqTables t_;
  int k_, width_;
};

}  // namespace

std::unique_ptr<RowQuantizer> make_nuq_quantizer(NuqTables tables) { return std::make_unique<NuqRows>(std::move(tables)); }

}  // namespace kvaudit::kv
