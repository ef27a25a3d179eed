#include "model/weight_loader.h"

#include <algorithm>

#include <fmt/ranges.h>

#include "core/error.h"

namespace kvaudit::model {

std::string shape_str(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

void read_tensor(const io::TensorSource& src, const std::string& name, const std::vector<int64_t>& shape,
                 std::vector<float>& dst) {
  const auto info = src.info(name);
  if (!info) usage_error("{}: missing tensor '{}'", src.describe(), name);
  if (info->shape != shape)
    usage_error("{}: tensor '{}' has shape {}, expected {}", src.describe(), name, shape_str(info->shape),
                shape_str(shape));
  dst.assign(size_t(info->numel()), 0.0f);
  src.read_f32(name, dst);
}

namespace {

// Splits a row-major [sum(rows), cols] matrix into consecutive row blocks.
void split_rows(const std::vector<float>& fused, int64_t cols, std::initializer_list<std::vector<float>*> outs,
                std::initializer_list<int64_t> rows) {
  auto it = fused.begin();
  auto r = rows.begin();
  for (std::vector<float>* o : outs) {
    const int64_t n = *r++ * cols;
    o->assign(it, it + n);
    it += n;
  }
}

}  // namespace

void load_weights(const io::TensorSource& src, const ModelConfig& c, const ArchSpec& a,
                  const TensorNames& names, Weights& w) {
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ff = c.d_ff;
  std::vector<PartRef> parts = weight_parts(c, a, w);
  std::vector<int> fused_qkv_done(size_t(c.n_layers), 0), fused_gate_up_done(size_t(c.n_layers), 0);
  for (const PartRef& p : parts) {
    const int l = p.layer;
    const bool is_qkv = p.part == Part::kWq || p.part == Part::kWk || p.part == Part::kWv;
    const bool is_gate_up = p.part == Part::kGate || p.part == Part::kUp;
    if (a.fused_qkv && is_qkv) {
      if (fused_qkv_done[size_t(l)]) continue;
      const std::string fname = names.fused_qkv(l);
      // Separate q/k/v are accepted as well (some converters split them); otherwise the fused
      // tensor is required and its name is what a missing-tensor error reports.
      if (src.info(fname) || !src.info(names.name(Part::kWq, l))) {
        std::vector<float> fused;
        read_tensor(src, fname, {q + 2 * kv, d}, fused);
        LayerWeights& L = w.layers[size_t(l)];
        split_rows(fused, d, {&L.wq, &L.wk, &L.wv}, {q, kv, kv});
        fused_qkv_done[size_t(l)] = 1;
        continue;
      }
    }
    if (a.fused_gate_up && is_gate_up) {
      if (fused_gate_up_done[size_t(l)]) continue;
      // GGUF phi3 keeps the fused matrix under ffn_up's name, so "no separate gate" decides.
      if (!src.info(names.name(Part::kGate, l))) {
        std::vector<float> fused;
        read_tensor(src, names.fused_gate_up(l), {2 * ff, d}, fused);
        LayerWeights& L = w.layers[size_t(l)];
        split_rows(fused, d, {&L.w_gate, &L.w_up}, {ff, ff});  // Phi3MLP: gate, up = chunk(2)
        fused_gate_up_done[size_t(l)] = 1;
        continue;
      }
    }
    read_tensor(src, names.name(p.part, l), p.shape, *p.dst);
  }
}

}  // namespace kvaudit::model
