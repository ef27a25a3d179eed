#include "model/weight_check.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/parallel.h"

namespace kvaudit::model {

namespace {

using io::GgmlType;

bool f16_finite(uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }
bool bf16_finite(uint16_t h) { return (h & 0x7f80u) != 0x7f80u; }

uint16_t u16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Byte offsets of the fp16 scales in one block of a quantized type; empty when the type has none
// that tell (checked by dequantizing instead).
std::vector<size_t> scale_offsets(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return {offsetof(io::BlockQ4_0, d)};
    case GgmlType::Q4_1: return {offsetof(io::BlockQ4_1, d), offsetof(io::BlockQ4_1, m)};
    case GgmlType::Q5_0: return {offsetof(io::BlockQ5_0, d)};
    case GgmlType::Q5_1: return {offsetof(io::BlockQ5_1, d), offsetof(io::BlockQ5_1, m)};
    case GgmlType::Q8_0: return {offsetof(io::BlockQ8_0, d)};
    case GgmlType::IQ4_NL: return {offsetof(io::BlockIQ4_NL, d)};
    case GgmlType::Q2_K: return {offsetof(io::BlockQ2_K, d), offsetof(io::BlockQ2_K, dmin)};
    case GgmlType::Q3_K: return {offsetof(io::BlockQ3_K, d)};
    case GgmlType::Q4_K: return {offsetof(io::BlockQ4_K, d), offsetof(io::BlockQ4_K, dmin)};
    case GgmlType::Q5_K: return {offsetof(io::BlockQ5_K, d), offsetof(io::BlockQ5_K, dmin)};
    case GgmlType::Q6_K: return {offsetof(io::BlockQ6_K, d)};
    default: return {};
  }
}

bool row_finite(const WeightMatrix& m, int64_t r, const std::vector<size_t>& scales, std::vector<float>& buf) {
  const uint8_t* p = m.row(r);
  const int64_t n = m.cols();
  switch (m.type()) {
    case GgmlType::F32:
      for (int64_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, p + 4 * i, 4);
        if (!std::isfinite(v)) return false;
      }
      return true;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i)
        if (!f16_finite(u16_at(p + 2 * i))) return false;
      return true;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i)
        if (!bf16_finite(u16_at(p + 2 * i))) return false;
      return true;
    default:
      break;
  }
  if (!scales.empty()) {
    const auto& tr = io::ggml_traits(m.type());
    for (int64_t b = 0; b < n / tr.block_size; ++b)
      for (size_t off : scales)
        if (!f16_finite(u16_at(p + size_t(b) * tr.type_size + off))) return false;
    return true;
  }
  buf.resize(size_t(n));
  m.row_f32(r, buf.data());
  return std::all_of(buf.begin(), buf.end(), [](float v) { return std::isfinite(v); });
}

}  // namespace

std::optional<std::string> first_non_finite_tensor(const ModelConfig& c, const ArchSpec& a, Weights& w,
                                                   const TensorNames& names) {
  const std::vector<PartRef> parts = weight_parts(c, a, w);
  // Each part's first bad row, the parts shared among threads; the first part in order is reported.
  std::vector<int64_t> bad(parts.size(), -1);
  run_parallel(parts.size(), [&](size_t i) {
    const PartRef& p = parts[i];
    if (!p.is_matrix()) {
      const auto it = std::find_if(p.dst->begin(), p.dst->end(), [](float v) { return !std::isfinite(v); });
      if (it != p.dst->end()) bad[i] = 0;
      return;
    }
    const std::vector<size_t> scales = scale_offsets(p.mat->type());
    std::vector<float> buf;
    for (int64_t r = 0; r < p.mat->rows(); ++r)
      if (!row_finite(*p.mat, r, scales, buf)) {
        bad[i] = r;
        break;
      }
  });
  for (size_t i = 0; i < parts.size(); ++i)
    if (bad[i] >= 0) {
      const Part part = parts[i].part;
      const int layer = parts[i].layer;
      // A fused tensor (phi3) is named as the file has it, with the part its row belongs to.
      if (a.fused_qkv && (part == Part::kWq || part == Part::kWk || part == Part::kWv))
        return fmt::format("'{}' ({} row {})", names.fused_qkv(layer), part_label(part), bad[i]);
      if (a.fused_gate_up && (part == Part::kGate || part == Part::kUp))
        return fmt::format("'{}' ({} row {})", names.fused_gate_up(layer), part_label(part), bad[i]);
      const std::string name = names.name(part, layer);
      return parts[i].is_matrix() ? fmt::format("'{}' (row {})", name, bad[i]) : fmt::format("'{}'", name);
    }
  return std::nullopt;
}

void refuse_non_finite(Model& m, const TensorNames& names) {
  if (const auto where = first_non_finite_tensor(m.config, m.arch, m.weights, names))
    usage_error("{}: tensor {} holds a NaN or an infinity: the file is damaged or its conversion overflowed "
                "(every logit would be NaN)", m.path, *where);
}

}  // namespace kvaudit::model
