#include "model/weight.h"

#include "core/error.h"

namespace kvaudit::model {

WeightMatrix WeightMatrix::f32(std::vector<float> values, int64_t rows, int64_t cols) {
  if (int64_t(values.size()) != rows * cols)
    runtime_error("WeightMatrix::f32: {} values for [{}, {}]", values.size(), rows, cols);
  auto owned = std::make_shared<const std::vector<float>>(std::move(values));
  const auto* data = reinterpret_cast<const uint8_t*>(owned->data());
  return view(io::GgmlType::F32, rows, cols, data, std::move(owned));
}

WeightMatrix WeightMatrix::view(io::GgmlType type, int64_t rows, int64_t cols, const uint8_t* data,
                                std::shared_ptr<const void> keep) {
  WeightMatrix w;
  w.type_ = type;
  w.rows_ = rows;
  w.cols_ = cols;
  w.row_bytes_ = io::ggml_row_bytes(type, cols);
  w.data_ = data;
  w.keep_ = std::move(keep);
  return w;
}

void WeightMatrix::row_f32(int64_t r, float* dst) const { io::dequantize_row(type_, row(r), dst, cols_); }

std::vector<float> WeightMatrix::to_f32() const {
  std::vector<float> out(static_cast<size_t>(size()));
  for (int64_t r = 0; r < rows_; ++r) row_f32(r, out.data() + r * cols_);
  return out;
}

WeightMatrix WeightMatrix::row_slice(int64_t first, int64_t n) const {
  if (first < 0 || n < 0 || first + n > rows_) runtime_error("row_slice [{}, +{}) of {} rows", first, n, rows_);
  if (!order_.empty()) runtime_error("row_slice of a reordered matrix");
  WeightMatrix w = *this;
  w.rows_ = n;
  w.data_ = data_ + row_bytes_ * size_t(first);
  return w;
}

void WeightMatrix::reorder_rows(const std::vector<int32_t>& order) {
  if (int64_t(order.size()) != rows_) runtime_error("reorder_rows: {} indices for {} rows", order.size(), rows_);
  std::vector<int32_t> composed(order.size());
  for (size_t r = 0; r < order.size(); ++r) composed[r] = order_.empty() ? order[r] : order_[size_t(order[r])];
  order_ = std::move(composed);
}

}  // namespace kvaudit::model
