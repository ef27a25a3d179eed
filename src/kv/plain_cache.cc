#include <vector>

#include "kv/cache.h"

namespace kvaudit::kv {
namespace {

class PlainCache final : public LayerCache {
 public:
  explicit PlainCache(CacheGeometry g) : width_(g.width()) {}
  int64_t append(const float* rows, int64_t n) override {
    const int64_t old = size();
    data_.insert(data_.end(), rows, rows + n * width_);
    return old;
  }
  int64_t size() const override { return int64_t(data_.size()) / width_; }
  const float* rows() const override { return data_.data(); }
  size_t bytes() const override { return data_.size() * 2; }  // as a 16-bit cache
  size_t resident_bytes() const override { return data_.capacity() * sizeof(float); }

 private:
  int64_t width_;
  std::vector<float> data_;  // [size, width]
};

}  // namespace

std::unique_ptr<LayerCache> make_plain_cache(CacheGeometry g) { return std::make_unique<PlainCache>(g); }

}  // namespace kvaudit::kv
