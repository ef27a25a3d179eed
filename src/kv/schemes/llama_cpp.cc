#include "kv/schemes/llama_cpp.h"

#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/half.h"

namespace kvaudit::kv {
namespace {

bool has_min(SchemeKind k) { return k == SchemeKind::kQ4_1 || k == SchemeKind::kQ5_1; }

// Signed value of largest magnitude; the first one wins a tie (ggml: `if (amax < fabsf(v))`).
float signed_max(const float* x, int n) {
  float amax = 0, m = 0;
  for (int j = 0; j < n; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      m = x[j];
    }
  return m;
}

// Nearest iq4_nl table entry; exact midpoints go to the upper entry (ggml best_index_int8).
uint8_t iq4_nearest(float v) {
  if (v <= kIq4NlValues[0]) return 0;
  if (v >= kIq4NlValues[15]) return 15;
  int hi = 1;
  while (v >= kIq4NlValues[hi]) ++hi;  // kIq4NlValues[hi-1] <= v < kIq4NlValues[hi]
  return v - kIq4NlValues[hi - 1] < kIq4NlValues[hi] - v ? uint8_t(hi - 1) : uint8_t(hi);
}

}  // namespace

int ggml_code_bits(SchemeKind kind) {
  switch (kind) {
    case SchemeKind::kQ8_0: return 8;
    case SchemeKind::kQ5_0:
    case SchemeKind::kQ5_1: return 5;
    default: return 4;
  }
}

GgmlBlock ggml_quantize_block(SchemeKind kind, const float* x, int n) {
  GgmlBlock b;
  switch (kind) {
    case SchemeKind::kQ8_0: {
      float amax = 0;
      for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
      const float d = amax / 127.0f;
      const float id = d != 0 ? 1.0f / d : 0.0f;
      b.d = round_fp16(d);
      for (int j = 0; j < n; ++j) b.codes[j] = uint8_t(int8_t(std::roundf(x[j] * id)));
      break;
    }
    case SchemeKind::kQ4_0:
    case SchemeKind::kQ5_0: {
      const bool five = kind == SchemeKind::kQ5_0;
      const float d = signed_max(x, n) / (five ? -16.0f : -8.0f);
      const float id = d != 0 ? 1.0f / d : 0.0f;
      b.d = round_fp16(d);
      for (int j = 0; j < n; ++j) {
        const int q = int8_t(x[j] * id + (five ? 16.5f : 8.5f));  // truncation toward zero, as ggml
        b.codes[j] = uint8_t(std::min(five ? 31 : 15, q));
      }
      break;
    }
    case SchemeKind::kQ4_1:
    case SchemeKind::kQ5_1: {
      const bool five = kind == SchemeKind::kQ5_1;
      float lo = FLT_MAX, hi = -FLT_MAX;
      for (int j = 0; j < n; ++j) {
        lo = std::min(lo, x[j]);
        hi = std::max(hi, x[j]);
      }
      const float d = (hi - lo) / (five ? 31.0f : 15.0f);
      const float id = d != 0 ? 1.0f / d : 0.0f;
      b.d = round_fp16(d);
      b.m = round_fp16(lo);
      for (int j = 0; j < n; ++j) {
        const float x0 = (x[j] - lo) * id;
        // q4_1: min(15, (int8)(x0 + 0.5)); q5_1: (uint8)(x0 + 0.5), which never exceeds 31.
        b.codes[j] = five ? uint8_t(std::min(31, int(uint8_t(x0 + 0.5f)))) : uint8_t(std::min(15, int(int8_t(x0 + 0.5f))));
      }
      break;
    }
    case SchemeKind::kIq4Nl: {
      const float d0 = signed_max(x, n) / float(kIq4NlValues[0]);
      const float id = d0 != 0 ? 1.0f / d0 : 0.0f;
      float sumqx = 0, sumq2 = 0;
      for (int j = 0; j < n; ++j) {
        b.codes[j] = iq4_nearest(x[j] * id);
        const float v = kIq4NlValues[b.codes[j]], w = x[j] * x[j];
        sumqx += w * v * x[j];
        sumq2 += w * v * v;
      }
      b.d = round_fp16(sumq2 > 0 ? sumqx / sumq2 : d0);
      break;
    }
    default: break;
  }
  return b;
}

float ggml_dequantize(SchemeKind kind, uint8_t code, float d, float m) {
  switch (kind) {
    case SchemeKind::kQ8_0: return float(int8_t(code)) * d;
    case SchemeKind::kQ4_0: return float(int(code) - 8) * d;
    case SchemeKind::kQ5_0: return float(int(code) - 16) * d;
    case SchemeKind::kQ4_1:
    case SchemeKind::kQ5_1: return float(code) * d + m;
    case SchemeKind::kIq4Nl: return float(kIq4NlValues[code & 15]) * d;
    default: return 0;
  }
}

int ggml_block_bytes(SchemeKind kind, const GgmlBlock& b, uint8_t* out) {
  int o = 0;
  auto put16 = [&](float v) {
    const uint16_t h = float_to_fp16(v);
    out[o++] = uint8_t(h & 0xff);
    out[o++] = uint8_t(h >> 8);
  };
  put16(b.d);
  if (has_min(kind)) put16(b.m);
  if (kind == SchemeKind::kQ8_0) {
    std::memcpy(out + o, b.codes.data(), kGgmlBlock);
    return o + kGgmlBlock;
  }
  if (kind == SchemeKind::kQ5_0 || kind == SchemeKind::kQ5_1) {
    uint32_t qh = 0;  // bit j: the fifth bit of code j
    for (int j = 0; j < kGgmlBlock; ++j) qh |= uint32_t((b.codes[j] >> 4) & 1u) << j;
    for (int i = 0; i < 4; ++i) out[o++] = uint8_t(qh >> (8 * i));
  }
  for (int j = 0; j < kGgmlBlock / 2; ++j)
    out[o++] = uint8_t((b.codes[j] & 15) | (b.codes[j + kGgmlBlock / 2] & 15) << 4);
  return o;
}

namespace {

class GgmlRows final : public RowQuantizer {
 public:
  GgmlRows(SchemeKind kind, int width) : kind_(kind), width_(width), n_blocks_((width + kGgmlBlock - 1) / kGgmlBlock) {}
  int code_bits() const override { return ggml_code_bits(kind_); }
  int n_params() const override { return n_blocks_ * (has_min(kind_) ? 2 : 1); }
  // params: [n_blocks] d, then [n_blocks] m (q4_1/q5_1).
  void quantize(const float* x, uint8_t* codes, float* params, std::vector<Outlier>*) const override {
    for (int i = 0; i < n_blocks_; ++i) {
      const int c0 = i * kGgmlBlock, n = std::min(kGgmlBlock, width_ - c0);
      const GgmlBlock b = ggml_quantize_block(kind_, x + c0, n);
      std::memcpy(codes + c0, b.codes.data(), size_t(n));
      params[i] = b.d;
      if (has_min(kind_)) params[n_blocks_ + i] = b.m;
    }
  }
  void dequantize(const uint8_t* codes, const float* params, float* out) const override {
    for (int i = 0; i < n_blocks_; ++i) {
      const int c0 = i * kGgmlBlock, n = std::min(kGgmlBlock, width_ - c0);
      const float d = params[i], m = has_min(kind_) ? params[n_blocks_ + i] : 0.0f;
      for (int j = 0; j < n; ++j) out[c0 + j] = ggml_dequantize(kind_, codes[c0 + j], d, m);
    }
  }

 private:
  SchemeKind kind_;
  int width_, n_blocks_;
};

}  // namespace

std::unique_ptr<RowQuantizer> make_ggml_quantizer(SchemeKind kind, int width) {
  return std::make_unique<GgmlRows>(kind, width);
}

}  // namespace kvaudit::kv
