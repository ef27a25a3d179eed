// The unit every token-wise scheme implements: quantize one (compact) cache row into codes and
// parameters, and dequantize them back. The cache (quant_cache.cc) stores either the dequantized
// floats (simulated) or the bit-packed codes and parameters (packed); both decode through
// dequantize(), so they agree bit for bit.
#pragma once
#include <cstdint>
#include <vector>

namespace kvaudit::kv {

// A dense-and-sparse outlier (nuq): channel index within the row, value kept in fp16.
struct Outlier {
  uint16_t channel;
  float value;  // fp16-exact
};

class RowQuantizer {
 public:
  virtual ~RowQuantizer() = default;
  virtual int code_bits() const = 0;   // each code < 2^code_bits
  virtual int n_params() const = 0;    // parameters per row (scales, zero points, mins)
  virtual int param_bytes() const { return 2; }  // 2: fp16-exact values; 4: fp32
  // x: [width] -> codes: [width], params: [n_params]; outliers (nuq) appended to *sparse.
  virtual void quantize(const float* x, uint8_t* codes, float* params, std::vector<Outlier>* sparse) const = 0;
  // codes: [width], params: [n_params] -> out: [width] (outliers are applied by the caller).
  virtual void dequantize(const uint8_t* codes, const float* params, float* out) const = 0;
  // Simulated storage: out = dequantize(quantize(x)) (outliers appended to *sparse, applied by the
  // caller). codes [width] and params [n_params] are scratch; a scheme may override this with one
  // fused pass that gives the same bits.
  virtual void quantize_dequantize(const float* x, float* out, uint8_t* codes, float* params,
                                   std::vector<Outlier>* sparse) const {
    quantize(x, codes, params, sparse);
    dequantize(codes, params, out);
  }
};

}  // namespace kvaudit::kv
