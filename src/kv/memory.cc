#include "kv/memory.h"

#include <algorithm>
#include <cmath>

#include "kv/registry.h"
#include "kv/schemes/llama_cpp.h"

namespace kvaudit::kv {

int protected_count(const SchemeSpec& s, int width) {
  if (s.protect == ProtectUnit::kNone) return 0;
  return s.protect == ProtectUnit::kPercent ? int(std::ceil(s.protect_amount / 100.0 * width - 1e-9))
                                            : int(s.protect_amount);
}

double cache_bytes(const SchemeSpec& spec, Role role, CacheGeometry g, int64_t t) {
  constexpr double kHalf = 2.0;
  const int w = g.width();
  if (spec.is_16bit()) return kHalf * double(w) * double(t);
  const SchemeSpec s = effective_scheme(spec, role);
  const int p = protected_count(s, w), wc = w - p;
  const double protect = kHalf * double(p) * double(t);
  const int bits = s.kind == SchemeKind::kInt || s.kind == SchemeKind::kNuq ? s.bits
                   : s.kind == SchemeKind::kFp8E4M3 || s.kind == SchemeKind::kFp8E5M2 ? 8
                                                                                        : ggml_code_bits(s.kind);
  const double code = std::ceil(double(wc) * bits / 8.0);  // per token
  const double zero = s.kind == SchemeKind::kInt && !s.sym ? 2.0 : 1.0;  // params per set
  constexpr double kIntParam = 4.0;  // intB s and z are fp32
  if (s.kind == SchemeKind::kInt && s.gran == Gran::kChannel) {
    const int64_t q = t / s.residual * s.residual;  // whole residual windows are quantized
    return double(q) * code + double(q / s.group) * wc * zero * kIntParam + kHalf * double(t - q) * wc + protect;
  }
  const int64_t q = std::max<int64_t>(0, t - s.residual);  // the newest R tokens stay 16-bit
  double per_row = code;
  double once = 0;
  switch (s.kind) {
    case SchemeKind::kInt:
      switch (s.gran) {
        case Gran::kTensor: once = zero * kIntParam; break;
        case Gran::kToken: per_row += zero * kIntParam; break;
        case Gran::kHead: per_row += g.n_kv_heads * zero * kIntParam; break;
        case Gran::kGroup: per_row += double(w / s.group) * zero * kIntParam; break;
        default: break;
      }
      break;
    case SchemeKind::kFp8E4M3:
    case SchemeKind::kFp8E5M2:
      if (s.fp8_scale == Fp8Scale::kDynamic) per_row += 4.0;
      break;
    case SchemeKind::kNuq:
      if (s.sparse > 0) per_row += kHalf + 4.0 * s.sparse * wc;
      break;
    default: {  // llama.cpp blocks
      const bool with_min = s.kind == SchemeKind::kQ4_1 || s.kind == SchemeKind::kQ5_1;
      per_row += std::ceil(double(wc) / kGgmlBlock) * (with_min ? 2 : 1) * kHalf;
    }
  }
  return double(q) * per_row + (t > 0 ? once : 0) + kHalf * double(t - q) * wc + protect;
}

}  // namespace kvaudit::kv
