// libFuzzer target for config.json (SPEC.md §1: transformers 4.x and 5.x keys, rope scaling,
// layer types) and generation_config.json, and what a parsed config feeds before any weight is
// read: the architecture, the weight byte count of the memory check and the RoPE frequencies. Any
// input either parses or throws UsageError.
// Build and run: scripts/fuzz.sh 120 model_config
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "fuzz_file.h"
#include "model/arch.h"
#include "model/config.h"
#include "model/memory_check.h"
#include "model/rope.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit;
  const std::string path = fuzz::write_input("config.json", data, size);
  try {
    (void)model::read_generation_eos_ids(path);
  } catch (const UsageError&) {
  }
  model::ModelConfig c;
  try {
    c = model::read_config_json(path);
  } catch (const UsageError&) {
    return 0;
  }
  const model::ArchSpec& arch = model::arch_spec(c.arch);  // parse_config_json accepts only known archs
  if (model::weights_bytes(c, arch) <= 0) std::abort();
  if (c.head_dim <= 4096) {  // the frequencies are [rotary_dim / 2]; a huge head_dim is valid but slow
    const auto inv = model::rope_inv_freq(c, 16);
    if (inv.size() != size_t(c.rotary_dim() / 2)) std::abort();
  }
  (void)model::rope_attention_scaling(c);
  return 0;
}
