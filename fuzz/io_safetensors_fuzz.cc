// libFuzzer target for the safetensors reader (SPEC.md §1): the 8-byte header length, the JSON
// header (dtypes, shapes, data_offsets, __metadata__) and every tensor read as floats. Any input
// either loads or throws UsageError; nothing else may escape, crash or trip a sanitizer.
// Build and run: scripts/fuzz.sh 120 io_safetensors
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_file.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit;
  const std::string path = fuzz::write_input("f.safetensors", data, size);
  std::unique_ptr<io::SafetensorsSource> src;
  try {
    src = io::SafetensorsSource::open(path);
  } catch (const UsageError&) {
    return 0;
  }
  fuzz::read_every_tensor(*src, /*must_read=*/false);  // a dtype that cannot be read as weights may refuse
  return 0;
}
