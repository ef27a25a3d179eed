// libFuzzer target for the .npy reader (`kvaudit kv --in`, SPEC.md §3): magic, version, header
// dict, shape and data length. Any input either reads (then its data has product(shape) values
// and writes back) or throws UsageError.
// Build and run: scripts/fuzz.sh 120 io_npy
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "fuzz_file.h"
#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit;
  const std::string path = fuzz::write_input("f.npy", data, size);
  io::NpyArray a;
  try {
    a = io::read_npy(path);
  } catch (const UsageError&) {
    return 0;
  }
  size_t n = 1;
  for (int64_t d : a.shape) {
    if (d < 0) std::abort();
    n *= size_t(d);
  }
  if (n != a.data.size()) std::abort();
  io::write_npy((fuzz::scratch_dir() / "back.npy").string(), a.shape, a.data);
  if (io::read_npy((fuzz::scratch_dir() / "back.npy").string()).data.size() != n) std::abort();
  return 0;
}
