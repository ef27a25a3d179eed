#include "eval/subset.h"

#include <algorithm>
#include <numeric>

namespace kvaudit::eval {

uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
  for (;;) {
    const uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

std::vector<size_t> seeded_permutation(size_t n, uint64_t seed) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::mt19937_64 rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[uniform_below(rng, i)]);
  return idx;
}

std::vector<size_t> seeded_subset(size_t n, size_t k, uint64_t seed) {
  std::vector<size_t> idx = seeded_permutation(n, seed);
  if (k < n) idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace kvaudit::eval
