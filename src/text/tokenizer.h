// Tokenizer identical to Hugging Face `tokenizers` (SPEC.md §2): BPE models read from tokenizer.json
// (ByteLevel + split regexes as GPT-2 / Llama-3 / Qwen2; SentencePiece-style BPE with Metaspace or
// Prepend+Replace normalizers and byte fallback as Llama-2 / Mistral / TinyLlama; the normalizers
// of text/normalizer.h, e.g. Qwen2's NFC) or from GGUF tokenizer metadata. Added/special tokens are matched before pre-tokenization, as HF does.
#pragma once
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::text {

struct TokenizerImpl;  // model, pre-tokenizer, normalizer, decoder; defined in tokenizer_impl.h

class Tokenizer {
 public:
  // tokenizer_config_path may be empty; when given it supplies chat_template, bos/eos token
  // strings and add_bos_token/add_eos_token. Throws UsageError naming the file on bad input.
  static Tokenizer from_hf_json(const std::string& tokenizer_json_path,
                                const std::string& tokenizer_config_path);
  // md: GGUF metadata as io::GgufFile::metadata() returns it (tokenizer.ggml.* keys and
  // tokenizer.chat_template). `what` names the source in error messages.
  static Tokenizer from_gguf_metadata(const nlohmann::json& md, const std::string& what = "gguf");
  // A directory -> tokenizer.json (+ tokenizer_config.json if present); a *.gguf file -> its metadata.
  static Tokenizer load_for_model(const std::string& model_path);

  // add_special: as HF `add_special_tokens=True` (BOS/EOS per the post-processor / add_bos flags).
  std::vector<int> encode(std::string_view text, bool add_special) const;
  // Concatenated decoded text of ids; skip_special drops special (control) tokens.
  // Out-of-range ids throw UsageError.
  std::string decode(std::span<const int> ids, bool skip_special = false) const;

  int bos_id() const;                // -1 if the model has none
  int eos_id() const;                // -1 if the model has none
  std::vector<int> eos_ids() const;  // eos plus end-of-turn ids (eot, <|im_end|>, <|eot_id|>, ...)
  std::optional<std::string> chat_template() const;
  std::string bos_token() const;     // "" if none
  std::string eos_token() const;     // "" if none
  int vocab_size() const;            // highest id + 1, added tokens included
  std::optional<int> token_to_id(std::string_view token) const;
  std::string id_to_token(int id) const;  // the vocabulary string ("" if out of range)
  bool is_special(int id) const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl_;
  friend class StreamDecoder;
};

// Streaming detokenizer for generation output: push one id at a time, get the text that is now
// final. Bytes of an incomplete UTF-8 sequence are held back until completed (or flushed).
// Holds a reference to the tokenizer, which must outlive it.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false);
  std::string push(int id);
  std::string flush();  // whatever is held back (invalid UTF-8 bytes included)

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::vector<int> ids_;     // all ids pushed so far
  size_t prefix_ = 0;        // ids_[prefix_, read_) decode to text already returned
  size_t read_ = 0;
};

}  // namespace kvaudit::text
