// A benchmark prompt as the model sees it (SPEC.md §2, §4 "chat template applied"): the model's own
// chat template with the generation prompt, tokenized without adding special tokens (as
// transformers' apply_chat_template(tokenize=True) does); with raw, the text as
// encode(add_special_tokens=True) gives it.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace kvaudit::eval {

// UsageError naming `model_path` when the model has no chat template and raw is false.
std::vector<int> encode_chat_prompt(const text::Tokenizer& tok, const std::string& user,
                                    const std::optional<std::string>& system, bool raw,
                                    const std::string& model_path);

}  // namespace kvaudit::eval
