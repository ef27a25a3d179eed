// tokenizer.json "decoder" (SPEC.md §2): turns the token strings of a decode() call back into text.
// Each step maps the list of token strings to a new list, as HF's decode_chain does; the results
// are concatenated at the end. Supported: Sequence, ByteLevel, ByteFallback, Fuse, Strip, Replace,
// Metaspace.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::text {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void apply(std::vector<std::string>& tokens) const = 0;
};

// null JSON -> nullptr (tokens are then joined with " ", as HF does).
std::unique_ptr<Decoder> build_decoder(const nlohmann::json& j, const std::string& what);

}  // namespace kvaudit::text
