#include "kv/schemes/int_rows.h"

#include <numeric>

namespace kvaudit::kv {
namespace {

class IntRows final : public RowQuantizer {
 public:
  IntRows(IntAffine q, std::vector<int> sets) : q_(q), sets_(std::move(sets)) {}
  int code_bits() const override { return q_.bits; }
  int n_params() const override { return int(sets_.size()) * (q_.sym ? 1 : 2); }
  int param_bytes() const override { return 4; }  // fp32 s and z: the SPEC formula exactly
  void quantize(const float* x, uint8_t* codes, float* params, std::vector<Outlier>*) const override {
    int64_t c = 0;
    for (size_t i = 0; i < sets_.size(); ++i) {
      const AffineParams p = q_.fit(x + c, sets_[i]);
      q_.quantize_span(x + c, sets_[i], p, codes + c);
      store(p, params, i);
      c += sets_[i];
    }
  }
  void dequantize(const uint8_t* codes, const float* params, float* out) const override {
    int64_t c = 0;
    for (size_t i = 0; i < sets_.size(); ++i) {
      q_.dequantize_span(codes + c, sets_[i], load(params, i), out + c);
      c += sets_[i];
    }
  }

 private:
  // params: [n_sets] scales then [n_sets] zero points (asym).
  void store(AffineParams p, float* params, size_t i) const {
    params[i] = p.scale;
    if (!q_.sym) params[sets_.size() + i] = p.zero;
  }
  AffineParams load(const float* params, size_t i) const {
    return {params[i], q_.sym ? 0.0f : params[sets_.size() + i]};
  }
  IntAffine q_;
  std::vector<int> sets_;
};

class IntFixed final : public RowQuantizer {
 public:
  IntFixed(IntAffine q, int width, AffineParams p) : q_(q), width_(width), p_(p) {}
  int code_bits() const override { return q_.bits; }
  int n_params() const override { return 0; }
  void quantize(const float* x, uint8_t* codes, float*, std::vector<Outlier>*) const override {
    q_.quantize_span(x, width_, p_, codes);
  }
  void dequantize(const uint8_t* codes, const float*, float* out) const override {
    q_.dequantize_span(codes, width_, p_, out);
  }

 private:
  IntAffine q_;
  int width_;
  AffineParams p_;
};

}  // namespace

std::unique_ptr<RowQuantizer> make_int_row_quantizer(IntAffine q, std::vector<int> set_lengths) {
  return std::make_unique<IntRows>(q, std::move(set_lengths));
}

std::unique_ptr<RowQuantizer> make_int_fixed_quantizer(IntAffine q, int width, AffineParams p) {
  return std::make_unique<IntFixed>(q, width, p);
}

}  // namespace kvaudit::kv
