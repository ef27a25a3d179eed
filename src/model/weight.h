// A weight matrix as the file stores it (issue 14): [rows, cols], each row `row_bytes` of one ggml
// encoding (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K), pointing into the model's
// memory-mapped file or into an owned buffer. Nothing expands it to fp32 as a whole: the matmul
// dequantizes tiles on the fly, and whoever needs floats takes one row (row_f32) or one tensor
// (to_f32) at a time, through the reference dequantizer io::dequantize_row.
//   WeightMatrix w = WeightMatrix::view(io::GgmlType::Q4_1, 576, 576, ptr, file);
//   w.row_f32(3, buf);  // row 3 as the reference dequantizer gives it
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "io/ggml_quants.h"

namespace kvaudit::model {

class WeightMatrix {
 public:
  WeightMatrix() = default;
  // Owns fp32 values [rows, cols] (random weights, the fp32-expanded path, tests).
  static WeightMatrix f32(std::vector<float> values, int64_t rows, int64_t cols);
  // Rows of `type` at data (ggml_row_bytes(type, cols) each); `keep` holds the memory alive.
  static WeightMatrix view(io::GgmlType type, int64_t rows, int64_t cols, const uint8_t* data,
                           std::shared_ptr<const void> keep);

  io::GgmlType type() const { return type_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t size() const { return rows_ * cols_; }  // elements
  bool empty() const { return rows_ == 0; }
  size_t row_bytes() const { return row_bytes_; }
  size_t bytes() const { return row_bytes_ * size_t(rows_); }  // as stored

  // The stored bytes of logical row r (after any row reordering).
  const uint8_t* row(int64_t r) const { return data_ + row_bytes_ * size_t(order_.empty() ? r : order_[size_t(r)]); }
  // Logical row r as floats, exactly as io::dequantize_row decodes it. dst: [cols].
  void row_f32(int64_t r, float* dst) const;
  // The whole matrix as floats [rows, cols] (per tensor, on demand: the CUDA upload, tests).
  std::vector<float> to_f32() const;

  // Rows [first, first + n) as a matrix sharing the storage (fused qkv / gate_up splits).
  WeightMatrix row_slice(int64_t first, int64_t n) const;
  // Reorders the logical rows: new row r is current row order[r] (GGUF's permuted q/k heads).
  void reorder_rows(const std::vector<int32_t>& order);

 private:
  io::GgmlType type_ = io::GgmlType::F32;
  int64_t rows_ = 0, cols_ = 0;
  size_t row_bytes_ = 0;
  const uint8_t* data_ = nullptr;
  std::vector<int32_t> order_;  // empty: identity
  std::shared_ptr<const void> keep_;
};

}  // namespace kvaudit::model
