// The pipeline behind Tokenizer, in HF `tokenizers` order (SPEC.md §2):
// added-token split -> normalizer (per piece) -> pre-tokenizer -> BPE -> post-processor;
// decode: id -> token string -> decoder.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/added_vocab.h"
#include "text/bpe_model.h"
#include "text/decoder.h"
#include "text/normalizer.h"
#include "text/pre_tokenizer.h"

namespace kvaudit::text {

// What tokenizer_config.json (or GGUF metadata) adds to tokenizer.json.
struct TokenizerExtras {
  std::optional<std::string> chat_template;
  std::string bos_token, eos_token;
  std::vector<std::string> end_of_turn_tokens;  // extra stop tokens (eot, <|im_end|>, ...)
};

struct TokenizerImpl {
  std::string what;  // the source, for messages
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Decoder> decoder;
  AddedTokenMatcher raw_added;         // normalized == false: matched on the raw input
  AddedTokenMatcher normalized_added;  // normalized == true: matched after normalization
  std::unordered_map<int, std::string> added_by_id;
  std::unordered_set<int> special_ids;
  std::vector<int> prefix_ids, suffix_ids;  // post-processor for a single sequence
  std::vector<std::string> id_to_token;     // [vocab_size], "" where no token has the id
  TokenizerExtras extras;

  void encode_text(std::string_view text, std::vector<int>& out) const;
};

// Builds the pipeline from a parsed tokenizer.json; `what` names the source in messages.
std::unique_ptr<TokenizerImpl> build_tokenizer_impl(const nlohmann::json& tokenizer_json, TokenizerExtras extras,
                                                    const std::string& what);

// tokenizer.json equivalent of GGUF tokenizer metadata, built the way transformers converts a
// GGUF file (integrations/gguf: byte-level "gpt2" and sentencepiece "llama" vocabularies, control
// tokens as special added tokens, user-defined ones as added tokens, the split regex chosen by
// tokenizer.ggml.pre). Also fills extras.
nlohmann::json gguf_to_tokenizer_json(const nlohmann::json& md, TokenizerExtras& extras, const std::string& what);

}  // namespace kvaudit::text
