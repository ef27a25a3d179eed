// A GGUF's tokenizer metadata read into a tokenizer.json: the pre-tokenizer names kvaudit knows, and
// metadata of the wrong shape refused with the key named (exit 2), never guessed.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/tokenizer_impl.h"

namespace kvaudit::text {
namespace {

// A byte-level BPE vocabulary of four tokens and one merge.
nlohmann::json gpt2_metadata(const nlohmann::json& pre) {
  nlohmann::json md = {{"general.architecture", "llama"},
                       {"tokenizer.ggml.model", "gpt2"},
                       {"tokenizer.ggml.tokens", {"a", "b", "ab", "\xC4\xA0"}},
                       {"tokenizer.ggml.token_type", {1, 1, 1, 1}},
                       {"tokenizer.ggml.merges", {"a b"}}};
  if (!pre.is_null()) md["tokenizer.ggml.pre"] = pre;
  return md;
}

std::string refusal(const nlohmann::json& md) {
  TokenizerExtras extras;
  try {
    gguf_to_tokenizer_json(md, extras, "m.gguf");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(GgufTokenizer, KnownPreTokenizersAndNoGuessForOthers) {
  for (const char* known : {"llama-bpe", "qwen2", "gpt-4o", "tekken", "smollm", "gpt-2"})
    EXPECT_EQ(refusal(gpt2_metadata(known)), "") << known;
  for (const char* unknown : {"deepseek-coder", "starcoder", "command-r", "qwenX"}) {
    const std::string why = refusal(gpt2_metadata(unknown));
    EXPECT_NE(why.find("m.gguf"), std::string::npos) << unknown;
    EXPECT_NE(why.find("is not a pre-tokenizer kvaudit knows"), std::string::npos) << why;
  }
  for (const nlohmann::json& missing : {nlohmann::json(nullptr), nlohmann::json("")})
    EXPECT_NE(refusal(gpt2_metadata(missing)).find("m.gguf: tokenizer.ggml.pre is missing"), std::string::npos);
}

TEST(GgufTokenizer, MetadataOfTheWrongShapeNamesItsKey) {
  auto md = gpt2_metadata("gpt-2");
  md["tokenizer.ggml.pre"] = 7;
  EXPECT_NE(refusal(md).find("'tokenizer.ggml.pre' must be a string"), std::string::npos) << refusal(md);
  md = gpt2_metadata("gpt-2");
  md["general.architecture"] = 3;
  EXPECT_NE(refusal(md).find("'general.architecture' must be a string"), std::string::npos) << refusal(md);
  md = gpt2_metadata("gpt-2");
  md["tokenizer.ggml.token_type"] = {1, 1};
  EXPECT_NE(refusal(md).find("one type per token (4 tokens)"), std::string::npos) << refusal(md);
  md = gpt2_metadata("gpt-2");
  md["tokenizer.chat_template"] = 1;
  EXPECT_NE(refusal(md).find("'tokenizer.chat_template' must be a string"), std::string::npos) << refusal(md);
}

}  // namespace
}  // namespace kvaudit::text
