#include "model/random_gguf.h"

#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "model/memory_check.h"
#include "model/random_weights.h"
#include "model/weight_loader.h"
#include "model/weight_parts.h"

namespace kvaudit::model {

namespace {

bool more_bits_layer(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

io::GgmlType parse_type(const std::string& type) {
  for (const char* name : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                           "Q6_K"}) {
    std::string lower = name;
    for (char& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (type == lower)
      for (uint32_t id = 0; id < 64; ++id)
        if (const auto t = io::ggml_type_traits(id); t && std::string(t->name) == name) return t->type;
  }
  usage_error("--weights-type '{}': expected f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, "
              "q6_k or q4_k_m",
              type);
}

}  // namespace

io::GgmlType random_matrix_type(const std::string& type, Part part, int layer, int n_layers, int64_t cols) {
  io::GgmlType t;
  if (type == "q4_k_m") {
    const bool more = part == Part::kLmHead || ((part == Part::kWv || part == Part::kDown) && more_bits_layer(layer, n_layers));
    t = more ? io::GgmlType::Q6_K : io::GgmlType::Q4_K;
  } else {
    t = parse_type(type);
  }
  return cols % io::ggml_traits(t).block_size == 0 ? t : io::GgmlType::F16;
}

Model load_random_typed(const ModelConfig& c, const ArchSpec& a, const std::string& type, uint64_t seed,
                        const std::string& source, bool expand_f32) {
  if (type != "q4_k_m") parse_type(type);  // an unknown name fails before anything is written
  Weights shapes;
  const std::vector<PartRef> parts = weight_parts(c, a, shapes);
  int64_t file_bytes = 0;
  io::GgufWriter w;
  w.set("general.architecture", c.arch);
  w.set("general.name", fmt::format("kvaudit random {} seed {}", type, seed));
  for (const PartRef& p : parts) {
    const std::string name = gguf_tensor_name(p.part, p.layer);
    const std::vector<int64_t> ne(p.shape.rbegin(), p.shape.rend());
    if (!p.is_matrix()) {
      w.add_tensor_f32(name, io::GgmlType::F32, ne, random_values(p, a, seed));
      file_bytes += int64_t(p.shape[0]) * 4;
      continue;
    }
    const io::GgmlType t = random_matrix_type(type, p.part, p.layer, c.n_layers, p.shape[1]);
    file_bytes += int64_t(io::ggml_row_bytes(t, p.shape[1])) * p.shape[0];
    const float scale = random_range(p, a).scale;
    const uint64_t stream = random_stream(p, a);
    const PartRef part = p;
    w.add_tensor_lazy(name, t, ne, [t, part, scale, seed, stream](std::span<uint8_t> dst) {
      const std::vector<uint8_t> b = random_blocks(t, part.shape[0], part.shape[1], scale, seed, stream);
      std::copy(b.begin(), b.end(), dst.begin());
    });
  }
  check_mapped_weights_fit(file_bytes, source);
  if (expand_f32) check_weights_fit(c, a, source);
  const std::string path =
      (std::filesystem::temp_directory_path() / fmt::format("kvaudit_random_{}_{}.gguf", getpid(), type)).string();
  w.write(path);
  std::shared_ptr<io::GgufFile> f;
  try {
    f = io::GgufFile::open(path);
  } catch (...) {
    std::filesystem::remove(path);
    throw;
  }
  std::filesystem::remove(path);  // the mapping keeps the data; the disk space returns at exit
  Model m;
  m.config = c;
  m.arch = a;
  TensorNames names{gguf_tensor_name, gguf_fused_qkv_name, gguf_fused_gate_up_name};
  load_weights(*f, c, a, names, m.weights, {f, expand_f32});
  return m;
}

}  // namespace kvaudit::model
