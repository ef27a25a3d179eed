#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/engine.h"
#ifdef KVAUDIT_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#endif

namespace kvaudit::engine {

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::kCpu;
  if (name == "cuda") return Device::kCuda;
  usage_error("--device: unknown device '{}' (expected cpu or cuda)", name);
}

const char* device_name(Device d) { return d == Device::kCuda ? "cuda" : "cpu"; }

#ifdef KVAUDIT_HAVE_CUDA
// SPEC.md §1: cuda when a device is present at run time.
Device default_device() { return cuda_device_count() > 0 ? Device::kCuda : Device::kCpu; }

std::unique_ptr<Backend> make_backend(Device device, const model::Model& model, const BackendOptions& opt) {
  if (device == Device::kCuda) return make_cuda_backend(model, opt);
  return make_cpu_backend(model, opt);
}
#else
Device default_device() { return Device::kCpu; }

std::unique_ptr<Backend> make_backend(Device device, const model::Model& model, const BackendOptions& opt) {
  if (device == Device::kCuda) usage_error("--device cuda: this kvaudit was built without CUDA (use --device cpu)");
  return make_cpu_backend(model, opt);
}
#endif

std::vector<int> Backend::forward_greedy(std::span<const SeqInput> batch, const Hooks* hooks) {
  const Logits logits = forward(batch, hooks);
  std::vector<int> next(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) next[i] = argmax(logits.last(i), logits.n_vocab);
  return next;
}

int argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return int(best);
}

}  // namespace kvaudit::engine
