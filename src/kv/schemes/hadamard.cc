#include "kv/schemes/hadamard.h"

#include <cmath>

namespace kvaudit::kv {

bool is_power_of_two(int n) { return n > 0 && (n & (n - 1)) == 0; }

void hadamard_rows(float* row, int n_heads, int head_dim) {
  const float norm = 1.0f / std::sqrt(float(head_dim));
  for (int h = 0; h < n_heads; ++h) {
    float* x = row + int64_t(h) * head_dim;  // [head_dim]
    // Fast Walsh-Hadamard transform: H_2n = [[H_n, H_n], [H_n, -H_n]].
    for (int len = 1; len < head_dim; len <<= 1)
      for (int i = 0; i < head_dim; i += 2 * len)
        for (int j = i; j < i + len; ++j) {
          const float a = x[j], b = x[j + len];
          x[j] = a + b;
          x[j + len] = a - b;
        }
    for (int j = 0; j < head_dim; ++j) x[j] *= norm;
  }
}

}  // namespace kvaudit::kv
