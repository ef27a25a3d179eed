// libFuzzer target for tokenizer.json and tokenizer_config.json (SPEC.md §2): model (BPE vocab and
// merges), normalizers, pre-tokenizers, decoders, post-processor, added tokens, chat template and
// bos/eos strings. Input: the tokenizer.json bytes, optionally followed by "\x00" and a
// tokenizer_config.json. Any input either loads (then encodes and decodes a fixed text) or throws
// UsageError.
// Build and run: scripts/fuzz.sh 120 text_tokenizer_json
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_file.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit;
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string tok_path = fuzz::write_input("tokenizer.json", in.substr(0, nul));
  std::string config_path;
  if (nul != std::string::npos) config_path = fuzz::write_input("tokenizer_config.json", in.substr(nul + 1));
  try {
    const auto tok = text::Tokenizer::from_hf_json(tok_path, config_path);
    for (bool special : {false, true}) {
      const std::vector<int> ids = tok.encode("Hello world, 123  x\xcc\x81 ﬁ 日本語\n<|im_end|></s>", special);
      for (int id : ids)
        if (id < 0 || id >= tok.vocab_size()) std::abort();
      (void)tok.decode(ids, special);
    }
    (void)tok.chat_template();
    (void)tok.eos_ids();
  } catch (const UsageError&) {
  }
  return 0;
}
