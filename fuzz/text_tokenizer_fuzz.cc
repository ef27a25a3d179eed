// libFuzzer target for the tokenizer (SPEC.md §2): random bytes -> encode / decode / streaming
// decode never crash or hang; invalid UTF-8 is read as U+FFFD; decode of any in-range ids works.
// The first input byte picks the fixture tokenizer (ByteLevel+regex, Llama-2 normalizer, Metaspace).
// Build and run: scripts/fuzz.sh
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/tokenizer.h"

#ifndef KVAUDIT_FIXTURES
#error "build with -DKVAUDIT_FIXTURES=\"<repo>/tests/fixtures\""
#endif

namespace {
const std::vector<kvaudit::text::Tokenizer>& tokenizers() {
  static const std::vector<kvaudit::text::Tokenizer> t = [] {
    std::vector<kvaudit::text::Tokenizer> v;
    for (const char* name : {"bytelevel", "spm_llama2", "spm_metaspace"})
      v.push_back(kvaudit::text::Tokenizer::from_hf_json(std::string(KVAUDIT_FIXTURES) + "/text/" + name + "/tokenizer.json", ""));
    return v;
  }();
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& toks = tokenizers();
  const auto& tok = toks[data[0] % toks.size()];
  const bool add_special = data[0] & 0x80;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::vector<int> ids = tok.encode(text, add_special);
  for (int id : ids)
    if (id < 0 || id >= tok.vocab_size()) std::abort();  // encode must only produce valid ids
  const std::string whole = tok.decode(ids);
  kvaudit::text::StreamDecoder sd(tok);
  std::string streamed;
  for (int id : ids) streamed += sd.push(id);
  streamed += sd.flush();
  if (streamed != whole) std::abort();
  // The raw bytes as ids (mod vocab): decode of arbitrary in-range ids must not crash.
  std::vector<int> raw;
  for (size_t i = 1; i + 1 < size; i += 2) raw.push_back((data[i] | data[i + 1] << 8) % tok.vocab_size());
  (void)tok.decode(raw, data[0] & 0x40);
  try {
    std::vector<int> bad = {tok.vocab_size()};
    (void)tok.decode(bad);
    std::abort();  // out of range must throw
  } catch (const kvaudit::UsageError&) {
  }
  return 0;
}
