#include "kv/schemes/llama_cpp.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/half.h"

namespace kvaudit::kv {
namespace {

bool has_min(SchemeKind k) { return k == SchemeKind::kQ4_1 || k == SchemeKind::kQ5_1; }

}  // namespace

io::GgmlType ggml_type(SchemeKind kind) {
  switch (kind) {
    case SchemeKind::kQ8_0: return io::GgmlType::Q8_0;
    case SchemeKind::kQ4_0: return io::GgmlType::Q4_0;
    case SchemeKind::kQ4_1: return io::GgmlType::Q4_1;
    case SchemeKind::kQ5_0: return io::GgmlType::Q5_0;
    case SchemeKind::kQ5_1: return io::GgmlType::Q5_1;
    case SchemeKind::kIq4Nl: return io::GgmlType::IQ4_NL;
    default: runtime_error("KV scheme kind {} is not a llama.cpp block type", int(kind));
  }
}

int ggml_code_bits(SchemeKind kind) { return ggml_code_bits(ggml_type(kind)); }

GgmlBlock ggml_quantize_block(SchemeKind kind, const float* x, int n) {
  GgmlBlock b;
  const GgmlParams p = ggml_quantize_ref(ggml_type(kind), x, n, b.codes.data());
  b.d = p.d;
  b.m = p.m;
  return b;
}

float ggml_dequantize(SchemeKind kind, uint8_t code, float d, float m) {
  return kv::ggml_dequantize(ggml_type(kind), code, d, m);
}

int ggml_block_bytes(SchemeKind kind, const GgmlBlock& b, uint8_t* out) {
  return int(io::encode_legacy_block(ggml_type(kind), b.codes.data(), float_to_fp16(b.d), float_to_fp16(b.m), out));
}

namespace {

class GgmlRows final : public RowQuantizer {
 public:
  GgmlRows(SchemeKind kind, int width, std::vector<int> order)
      : kind_(kind), width_(width), n_blocks_((width + kGgmlBlock - 1) / kGgmlBlock), order_(std::move(order)) {}
  int code_bits() const override { return ggml_code_bits(kind_); }
  int n_params() const override { return n_blocks_ * (has_min(kind_) ? 2 : 1); }
  // params: [n_blocks] d, then [n_blocks] m (q4_1/q5_1).
  void quantize(const float* x, uint8_t* codes, float* params, std::vector<Outlier>*) const override {
    float blk[kGgmlBlock];
    for (int i = 0; i < n_blocks_; ++i) {
      const int c0 = i * kGgmlBlock, n = std::min(kGgmlBlock, width_ - c0);
      const GgmlBlock b = ggml_quantize_block(kind_, gather(x, c0, n, blk), n);
      std::memcpy(codes + c0, b.codes.data(), size_t(n));
      params[i] = b.d;
      if (has_min(kind_)) params[n_blocks_ + i] = b.m;
    }
  }
  void dequantize(const uint8_t* codes, const float* params, float* out) const override {
    for (int i = 0; i < n_blocks_; ++i) {
      const int c0 = i * kGgmlBlock, n = std::min(kGgmlBlock, width_ - c0);
      const float d = params[i], m = has_min(kind_) ? params[n_blocks_ + i] : 0.0f;
      for (int j = 0; j < n; ++j) out[channel(c0 + j)] = ggml_dequantize(kind_, codes[c0 + j], d, m);
    }
  }
  void quantize_dequantize(const float* x, float* out, uint8_t* codes, float* params,
                           std::vector<Outlier>* sparse) const override {
    if (kind_ != SchemeKind::kQ8_0 && kind_ != SchemeKind::kQ4_0) {
      RowQuantizer::quantize_dequantize(x, out, codes, params, sparse);
    } else if (order_.empty()) {
      ggml_quantize_dequantize_row(kind_, x, width_, out);
    } else {  // the fast blocks on gathered values, scattered back
      float blk[kGgmlBlock], y[kGgmlBlock];
      for (int c0 = 0; c0 < width_; c0 += kGgmlBlock) {
        const int n = std::min(kGgmlBlock, width_ - c0);
        ggml_quantize_dequantize_row(kind_, gather(x, c0, n, blk), n, y);
        for (int j = 0; j < n; ++j) out[order_[size_t(c0 + j)]] = y[j];
      }
    }
  }

 private:
  int channel(int p) const { return order_.empty() ? p : order_[size_t(p)]; }
  // The n values at positions c0.. of the row in block order: x itself, or copied into blk.
  const float* gather(const float* x, int c0, int n, float* blk) const {
    if (order_.empty()) return x + c0;
    for (int j = 0; j < n; ++j) blk[j] = x[order_[size_t(c0 + j)]];
    return blk;
  }

  SchemeKind kind_;
  int width_, n_blocks_;
  std::vector<int> order_;  // [width] or empty (identity)
};

}  // namespace

std::vector<int> llama_cpp_key_order(CacheGeometry g) {
  std::vector<int> order(size_t(g.width()));
  const int D = g.head_dim;
  if (g.llama_cpp_pairs_adjacent && D % 2 != 0)
    runtime_error("llama.cpp's interleaved key order needs an even head_dim, got {}", D);
  for (int h = 0; h < g.n_kv_heads; ++h)
    for (int p = 0; p < D; ++p)
      order[size_t(h * D + p)] = h * D + (g.llama_cpp_pairs_adjacent ? (p % 2) * (D / 2) + p / 2 : p);
  return order;
}

std::unique_ptr<RowQuantizer> make_ggml_quantizer(SchemeKind kind, int width, std::vector<int> order) {
  if (!order.empty() && int(order.size()) != width)
    runtime_error("make_ggml_quantizer: channel order of {} for a row of {}", order.size(), width);
  return std::make_unique<GgmlRows>(kind, width, std::move(order));
}

}  // namespace kvaudit::kv
