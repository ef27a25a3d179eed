// load_model: an HF directory, a .gguf file, or a config.json with random weights (SPEC.md §1).
#include "model/model.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <future>
#include <string_view>

#include <fmt/format.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/gguf_model.h"
#include "model/memory_check.h"
#include "model/random_gguf.h"
#include "model/random_weights.h"
#include "model/sha256.h"
#include "model/weight_check.h"
#include "model/weight_loader.h"
#include "model/weight_parts.h"

namespace kvaudit::model {

namespace fs = std::filesystem;

namespace {

// A GGUF file: named .gguf in any case (its loader then names what is wrong with it), or any other
// file that starts with the GGUF magic, as llama.cpp reads it (.bin, no extension).
bool is_gguf_path(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (ext == ".gguf") return true;
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  return f.read(magic, 4) && std::string_view(magic, 4) == "GGUF";
}

// The config.json of an HF model path: a directory, or the config.json itself (random weights).
std::string config_path(const std::string& path) {
  if (fs::is_directory(path)) return (fs::path(path) / "config.json").string();
  return path;
}

Model load_random(const std::string& path, const LoadOptions& opt) {
  if (is_gguf_path(path))
    usage_error("{}: --random-weights needs a config.json (or a directory holding one), not a GGUF file", path);
  const std::string cfg = config_path(path);
  if (!fs::exists(cfg)) usage_error("{}: no config.json for --random-weights", path);
  Model m;
  m.path = path;
  m.config = read_config_json(cfg);
  m.arch = arch_spec(m.config.arch);
  if (!opt.random_type.empty()) {
    Model typed = load_random_typed(m.config, m.arch, opt.random_type, opt.seed, cfg, opt.expand_f32);
    m.weights = std::move(typed.weights);
  } else {
    check_weights_fit(m.config, m.arch, cfg);  // before a byte of the weights is allocated
    fill_random_weights(m.config, m.arch, opt.seed, m.weights);
  }
  m.n_params = count_params(m.weights);
  m.weights_dtype = opt.random_type.empty() ? "random" : "random " + opt.random_type;
  m.weights_sha256 = fmt::format("random:{}", opt.seed);
  return m;
}

Model load_hf(const std::string& path, const LoadOptions& opt) {
  if (!fs::is_directory(path))
    usage_error("{}: --model must be a directory with config.json and safetensors, or a .gguf file", path);
  const std::string cfg = config_path(path);
  if (!fs::exists(cfg)) usage_error("{}: missing config.json", path);
  Model m;
  m.path = path;
  m.config = read_config_json(cfg);
  // eos ids of generate(): generation_config.json's eos_token_id adds to config.json's.
  const fs::path gen = fs::path(path) / "generation_config.json";
  if (fs::exists(gen)) {
    std::vector<int> extra = read_generation_eos_ids(gen.string());
    for (int id : extra)
      if (std::find(m.config.eos_ids.begin(), m.config.eos_ids.end(), id) == m.config.eos_ids.end())
        m.config.eos_ids.push_back(id);
  }
  m.arch = arch_spec(m.config.arch);
  std::shared_ptr<io::SafetensorsSource> src = io::SafetensorsSource::open(path);
  std::vector<std::string> files;
  int64_t file_bytes = 0;
  for (const auto& f : src->files()) {
    files.push_back(f->path());
    file_bytes += int64_t(fs::file_size(f->path()));
  }
  // Before a byte of the weights is allocated or paged in (opening only mapped the headers).
  if (opt.expand_f32)
    check_weights_fit(m.config, m.arch, path);
  else
    check_mapped_weights_fit(file_bytes, path);
  // Hash while converting: both are bound by reading the same pages.
  std::future<std::string> sha;
  if (opt.compute_sha256) sha = std::async(std::launch::async, [files] { return sha256_files(files); });
  const ArchSpec& a = m.arch;
  TensorNames names{[&a](Part p, int l) { return hf_tensor_name(p, l, a); }, hf_fused_qkv_name,
                    hf_fused_gate_up_name};
  // An exception joins `sha` in its destructor.
  load_weights(*src, m.config, m.arch, names, m.weights, {src, opt.expand_f32});
  refuse_non_finite(m, names);
  if (const auto info = src->info(hf_tensor_name(Part::kEmbed, -1, a))) m.weights_dtype = info->dtype;
  m.n_params = count_params(m.weights);
  if (sha.valid()) m.weights_sha256 = sha.get();
  return m;
}

}  // namespace

Model load_model(const std::string& path, const LoadOptions& opt) {
  if (opt.random_weights) return load_random(path, opt);
  if (!fs::exists(path)) usage_error("{}: no such file or directory", path);
  if (is_gguf_path(path)) return load_gguf_model(path, opt);
  return load_hf(path, opt);
}

}  // namespace kvaudit::model
