// RMSNorm, both kinds (ops.h). The mean of squares accumulates in float, left to right, as
// transformers does in float32 (hidden_states.pow(2).mean(-1, keepdim=True)).
#include <cmath>

#include "engine/ops.h"

namespace kvaudit::engine::cpu {

void rmsnorm(NormKind kind, const float* x, int64_t n, int64_t d, const float* w, float eps, float* y) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x + t * d;
    float* yr = y + t * d;
    float ss = 0;
    for (int64_t c = 0; c < d; ++c) ss += xr[c] * xr[c];
    // hidden_states * torch.rsqrt(variance + eps)
    const float inv = 1.0f / std::sqrt(ss / float(d) + eps);
    if (kind == NormKind::kRms) {
      for (int64_t c = 0; c < d; ++c) yr[c] = w[c] * (xr[c] * inv);       // weight * hidden
    } else {
      for (int64_t c = 0; c < d; ++c) yr[c] = (xr[c] * inv) * (1.0f + w[c]);  // output * (1 + w)
    }
  }
}

}  // namespace kvaudit::engine::cpu
