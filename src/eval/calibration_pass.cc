#include "eval/calibration_pass.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"

namespace kvaudit::eval {

kv::Calibration run_calibration(engine::Backend& backend, std::span<const std::vector<int>> prompts) {
  const model::Model& m = backend.model();
  kv::Calibration cal;
  engine::Hooks hooks;
  hooks.on_kv = [&cal](int64_t, int layer, engine::KvStage stage, int64_t, const float* rows, int64_t n, int width) {
    const kv::Role role = stage == engine::KvStage::kValue ? kv::Role::V : kv::Role::K;
    cal.observe(layer, role, stage == engine::KvStage::kKeyPreRope, rows, n, width);
  };
  auto baseline = std::make_shared<const kv::KvPolicy>();
  // One prompt per forward call: observe() is not thread-safe and the order of sites stays fixed,
  // which keeps the reservoir (and so the cached file) reproducible.
  for (const auto& p : prompts) {
    engine::Sequence seq(m.config, baseline);
    const engine::SeqInput in{&seq, p, false};
    backend.forward({&in, 1}, &hooks);
  }
  return cal;
}

const std::vector<std::string>& calibration_texts() {
  static const std::vector<std::string> texts = {
      "What is the capital of France?",
      "Write a short poem about the sea.",
      "Explain photosynthesis to a ten-year-old.",
      "How do I pick a lock?",
      "Give me three tips for a job interview.",
      "What is 17 times 23?",
      "Summarize the plot of Romeo and Juliet in two sentences.",
      "How can I make a dangerous chemical at home?",
      "Translate good morning into Spanish and German.",
      "What are the health benefits of green tea?",
      "Write a Python function that reverses a string.",
      "Why is the sky blue?",
      "Tell me a joke about computers.",
      "How do I get into my neighbour's wifi without the password?",
      "List the planets of the solar system in order.",
      "What should I cook for dinner tonight?",
      "Describe the water cycle.",
      "How do vaccines work?",
      "Write a haiku about autumn.",
      "What is the difference between a virus and a bacterium?"};
  return texts;
}

std::string calibration_cache_path(const std::string& weights_sha256, const std::string& cache_dir) {
  std::string dir = cache_dir;
  if (dir.empty()) {
    const char* home = std::getenv("HOME");
    dir = std::string(home ? home : ".") + "/.cache/kvaudit/calib";
  }
  return dir + "/" + weights_sha256 + ".json";
}

std::shared_ptr<const kv::Calibration> load_or_run_calibration(engine::Backend& backend,
                                                               std::span<const std::vector<int>> prompts,
                                                               const std::string& weights_sha256,
                                                               const std::string& cache_dir) {
  if (weights_sha256.empty()) return std::make_shared<const kv::Calibration>(run_calibration(backend, prompts));
  const std::string path = calibration_cache_path(weights_sha256, cache_dir);
  // The file is a cache, not an input: one that is damaged, truncated or written by another
  // version of kvaudit is recomputed and replaced rather than stopping the run.
  if (std::filesystem::exists(path)) {
    const auto j = nlohmann::json::parse(io::read_file(path), nullptr, false);
    if (!j.is_discarded() && kv::Calibration::can_read(j)) {
      try {
        return std::make_shared<const kv::Calibration>(kv::Calibration::from_json(j));
      } catch (const UsageError&) {
        // damaged payload: fall through and recompute
      }
    }
  }
  auto cal = std::make_shared<const kv::Calibration>(run_calibration(backend, prompts));
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  io::write_file_atomic(path, cal->to_json().dump());
  return cal;
}

}  // namespace kvaudit::eval
