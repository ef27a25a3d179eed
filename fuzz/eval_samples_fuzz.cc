// libFuzzer target for an --out directory's samples.jsonl as a rerun reads it back to resume
// (docs/EVAL.md "Outputs"): complete lines, a torn last line, malformed lines. Any input either
// reads (then its complete lines re-serialize to lines that read back equal) or throws UsageError.
// Build and run: scripts/fuzz.sh 120 eval_samples
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "eval/samples.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit;
  const std::string path = fuzz::write_input("samples.jsonl", data, size);
  eval::SamplesLog log;
  try {
    log = eval::read_samples(path);
  } catch (const UsageError&) {
    return 0;
  }
  if (log.valid_bytes > size) std::abort();
  std::string again;
  for (const auto& s : log.samples) again += eval::sample_json_line(s);
  const eval::SamplesLog back = eval::read_samples(fuzz::write_input("again.jsonl", again));
  if (back.samples.size() != log.samples.size() || back.finished() != log.finished()) std::abort();
  return 0;
}
