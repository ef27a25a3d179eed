// libFuzzer target for the GGUF reader (SPEC.md §1) and what reads its metadata: header, metadata
// key/values, tensor infos and data bounds (GgufFile::open), every tensor dequantized (read_f32),
// the model config (config_from_gguf) and the tokenizer (Tokenizer::from_gguf_metadata). Any input
// either loads or throws UsageError; nothing else may escape, crash or trip a sanitizer.
// Build and run: scripts/fuzz.sh 120 io_gguf
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_file.h"
#include "io/gguf.h"
#include "model/gguf_model.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit;
  const std::string path = fuzz::write_input("f.gguf", data, size);
  std::unique_ptr<io::GgufFile> f;
  try {
    f = io::GgufFile::open(path);
  } catch (const UsageError&) {
    return 0;
  }
  fuzz::read_every_tensor(*f, /*must_read=*/false);
  for (const auto& t : f->tensors())
    if (!f->info(t.name) || f->info(t.name)->numel() != t.numel()) std::abort();
  try {
    (void)model::config_from_gguf(*f);
  } catch (const UsageError&) {
  }
  try {
    const auto tok = text::Tokenizer::from_gguf_metadata(f->metadata(), path);
    const std::vector<int> ids = tok.encode("Hello, world! 123 日本語 \xcc\x81 <|im_start|>", true);
    for (int id : ids)
      if (id < 0 || id >= tok.vocab_size()) std::abort();
    (void)tok.decode(ids);
  } catch (const UsageError&) {
  }
  return 0;
}
