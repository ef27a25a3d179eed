// libFuzzer target for sharded safetensors (SPEC.md §1): the input is a
// model.safetensors.index.json in a directory that also holds two valid shards,
// model-00001-of-00002.safetensors (tensors "a", "b") and model-00002-of-00002.safetensors ("c").
// Any index either opens (every tensor then reads) or throws UsageError.
// Build and run: scripts/fuzz.sh 120 io_safetensors_index
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_file.h"
#include "io/safetensors.h"

namespace {

const std::string& model_dir() {
  static const std::string dir = [] {
    using namespace kvaudit::io;
    const std::vector<float> v = {1.f, -2.f, 0.5f, 3.f, 4.f, -1.f};
    write_safetensors((kvaudit::fuzz::scratch_dir() / "model-00001-of-00002.safetensors").string(),
                      {make_safetensors_tensor("a", "F32", {2, 3}, v), make_safetensors_tensor("b", "BF16", {6}, v)});
    write_safetensors((kvaudit::fuzz::scratch_dir() / "model-00002-of-00002.safetensors").string(),
                      {make_safetensors_tensor("c", "F16", {3, 2}, v)});
    return kvaudit::fuzz::scratch_dir().string();
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit;
  const std::string& dir = model_dir();
  fuzz::write_input("model.safetensors.index.json", data, size);
  std::unique_ptr<io::SafetensorsSource> src;
  try {
    src = io::SafetensorsSource::open(dir);
  } catch (const UsageError&) {
    return 0;
  }
  fuzz::read_every_tensor(*src, /*must_read=*/true);  // every shard tensor is F32/BF16/F16
  return 0;
}
