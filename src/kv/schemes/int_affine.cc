// intB affine quantization (SPEC.md §3): the scalar definitions. The vectorised forms of the same
// formulas (spans, columns, sets, the fused fake-quantization) are in int_affine_simd.cc.
#include "kv/schemes/int_affine.h"

#include <algorithm>

namespace kvaudit::kv {

// The stored scale is s itself (fp32), so that x' = (q - z)·s is the SPEC formula exactly and
// matches the research code's fp32 hooks (tests/fixtures/kv_paper: fp16 scales moved tiny-model
// logits by 1e-2 relative, fp32 scales match to 1e-6); kept finite (kv/layout.h).
AffineParams IntAffine::fit_range(float lo, float hi) const { return affine_fit_range(bits, sym, lo, hi); }

AffineParams IntAffine::fit(const float* x, int64_t n, int64_t stride) const {
  float lo = 0, hi = 0;
  if (stride == 1) {
    minmax_span(x, n, &lo, &hi);
    return fit_range(lo, hi);
  }
  if (n > 0) lo = hi = x[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, x[i * stride]);
    hi = std::max(hi, x[i * stride]);
  }
  return fit_range(lo, hi);
}

uint8_t IntAffine::quantize(float x, AffineParams p) const { return affine_quantize(bits, sym, x, p); }

float IntAffine::dequantize(uint8_t code, AffineParams p) const {
  return affine_dequantize(bits, sym, code, p.scale, p.zero);
}

}  // namespace kvaudit::kv
