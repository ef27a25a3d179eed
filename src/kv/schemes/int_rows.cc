#include "kv/schemes/int_rows.h"

#include <algorithm>
#include <numeric>

namespace kvaudit::kv {
namespace {

constexpr int64_t kSetBatch = 64;  // sets fitted together (stack scratch) in the fused path

class IntRows final : public RowQuantizer {
 public:
  IntRows(IntAffine q, std::vector<int> sets) : q_(q), sets_(std::move(sets)) {
    uniform_ = !sets_.empty() && std::all_of(sets_.begin(), sets_.end(), [&](int n) { return n == sets_[0]; });
  }
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
  // One pass per set, no codes: equal sets (token, head, group without +protect) are fitted a batch at
  // a time (minmax_sets + fit_ranges, vectorised across sets); bit-identical to quantize + dequantize.
  void quantize_dequantize(const float* x, float* out, uint8_t*, float*, std::vector<Outlier>*) const override {
    if (!uniform_) {
      int64_t c = 0;
      for (int n : sets_) {
        q_.fake_quantize_span(x + c, n, q_.fit(x + c, n), out + c);
        c += n;
      }
      return;
    }
    const int64_t len = sets_[0], n_sets = int64_t(sets_.size());
    float lo[kSetBatch], hi[kSetBatch], scale[kSetBatch], zero[kSetBatch], qscale[kSetBatch];  // [batch]
    for (int64_t s0 = 0; s0 < n_sets; s0 += kSetBatch) {
      const int64_t nb = std::min(kSetBatch, n_sets - s0);
      const float* xb = x + s0 * len;
      minmax_sets(xb, nb, len, lo, hi);
      q_.fit_ranges(lo, hi, nb, scale, zero, qscale);
      q_.fake_quantize_sets(xb, nb, len, scale, zero, qscale, out + s0 * len);
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
  bool uniform_ = false;  // every set has the same length
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
  void quantize_dequantize(const float* x, float* out, uint8_t*, float*, std::vector<Outlier>*) const override {
    q_.fake_quantize_span(x, width_, p_, out);
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
