#include "model/weight_loader.h"

#include <algorithm>

#include <fmt/ranges.h>

#include "core/error.h"
#include "core/parallel.h"

namespace kvaudit::model {

std::string shape_str(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

namespace {

// Throws UsageError unless `name` exists with exactly `shape`.
void check_tensor(const io::TensorSource& src, const std::string& name, const std::vector<int64_t>& shape) {
  const auto info = src.info(name);
  if (!info) usage_error("{}: missing tensor '{}'", src.describe(), name);
  if (info->shape != shape)
    usage_error("{}: tensor '{}' has shape {}, expected {}", src.describe(), name, shape_str(info->shape),
                shape_str(shape));
}

// One tensor of the file and the slots it fills: one vector, or one matrix, or consecutive row
// blocks of a fused [sum(rows), cols] matrix (phi3 qkv_proj -> q, k, v; gate_up_proj -> gate, up).
struct ReadJob {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float>* vec = nullptr;
  std::vector<WeightMatrix*> mats;
  std::vector<int64_t> rows;  // per matrix
};

void run_job(const io::TensorSource& src, const ReadJob& j, const MatrixStorage& storage) {
  int64_t n = 1;
  for (int64_t d : j.shape) n *= d;
  if (j.vec != nullptr) {
    j.vec->assign(size_t(n), 0.0f);
    src.read_f32(j.name, *j.vec);
    return;
  }
  const int64_t cols = j.shape[1];
  if (storage.keep && !storage.expand_f32) {
    if (const auto raw = src.raw(j.name)) {
      const WeightMatrix all = WeightMatrix::view(raw->type, j.shape[0], cols, raw->data, storage.keep);
      int64_t first = 0;
      for (size_t i = 0; i < j.mats.size(); ++i) {
        *j.mats[i] = all.row_slice(first, j.rows[i]);
        first += j.rows[i];
      }
      return;
    }
  }
  std::vector<float> all(static_cast<size_t>(n));
  src.read_f32(j.name, all);
  if (j.mats.size() == 1) {
    *j.mats[0] = WeightMatrix::f32(std::move(all), j.shape[0], cols);
    return;
  }
  auto it = all.begin();
  for (size_t i = 0; i < j.mats.size(); ++i) {
    const int64_t m = j.rows[i] * cols;
    *j.mats[i] = WeightMatrix::f32(std::vector<float>(it, it + m), j.rows[i], cols);
    it += m;
  }
}

// Dequantizing is the bulk of a GGUF load: tensors are converted in parallel, one per thread at a
// time (core/parallel.h: the first exception caught is rethrown once every thread stops).
void run_jobs(const io::TensorSource& src, const std::vector<ReadJob>& jobs, const MatrixStorage& storage) {
  run_parallel(jobs.size(), [&](size_t i) { run_job(src, jobs[i], storage); });
}

}  // namespace

void read_tensor(const io::TensorSource& src, const std::string& name, const std::vector<int64_t>& shape,
                 std::vector<float>& dst) {
  check_tensor(src, name, shape);
  run_job(src, {name, shape, &dst, {}, {}}, {});
}

void load_weights(const io::TensorSource& src, const ModelConfig& c, const ArchSpec& a,
                  const TensorNames& names, Weights& w, const MatrixStorage& storage) {
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ff = c.d_ff;
  // Plan and validate every name and shape first, so a bad file fails before any conversion and
  // always with the same (first) error.
  std::vector<ReadJob> jobs;
  std::vector<int> fused_qkv_done(size_t(c.n_layers), 0), fused_gate_up_done(size_t(c.n_layers), 0);
  for (const PartRef& p : weight_parts(c, a, w)) {
    const int l = p.layer;
    const bool is_qkv = p.part == Part::kWq || p.part == Part::kWk || p.part == Part::kWv;
    const bool is_gate_up = p.part == Part::kGate || p.part == Part::kUp;
    if (a.fused_qkv && is_qkv) {
      if (fused_qkv_done[size_t(l)]) continue;
      const std::string fname = names.fused_qkv(l);
      // Separate q/k/v are accepted as well (some converters split them); otherwise the fused
      // tensor is required and its name is what a missing-tensor error reports.
      if (src.info(fname) || !src.info(names.name(Part::kWq, l))) {
        LayerWeights& L = w.layers[size_t(l)];
        jobs.push_back({fname, {q + 2 * kv, d}, nullptr, {&L.wq, &L.wk, &L.wv}, {q, kv, kv}});
        fused_qkv_done[size_t(l)] = 1;
        check_tensor(src, jobs.back().name, jobs.back().shape);
        continue;
      }
    }
    if (a.fused_gate_up && is_gate_up) {
      if (fused_gate_up_done[size_t(l)]) continue;
      // GGUF phi3 keeps the fused matrix under ffn_up's name, so "no separate gate" decides.
      if (!src.info(names.name(Part::kGate, l))) {
        LayerWeights& L = w.layers[size_t(l)];
        // Phi3MLP: gate, up = gate_up_proj(x).chunk(2, dim=-1)
        jobs.push_back({names.fused_gate_up(l), {2 * ff, d}, nullptr, {&L.w_gate, &L.w_up}, {ff, ff}});
        fused_gate_up_done[size_t(l)] = 1;
        check_tensor(src, jobs.back().name, jobs.back().shape);
        continue;
      }
    }
    if (p.is_matrix())
      jobs.push_back({names.name(p.part, l), p.shape, nullptr, {p.mat}, {p.shape[0]}});
    else
      jobs.push_back({names.name(p.part, l), p.shape, p.dst, {}, {}});
    check_tensor(src, jobs.back().name, jobs.back().shape);
  }
  run_jobs(src, jobs, storage);
}

}  // namespace kvaudit::model
