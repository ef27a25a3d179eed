// --system: given, even as "", it is the prompt's system turn; left out, the chat template decides
// (Qwen's and SmolLM2's insert a default system turn when there is none).
#include "eval/chat_prompt.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "text/tokenizer.h"

namespace kvaudit::eval {
namespace {

text::Tokenizer tokenizer_with_default_system_turn() {
  const std::string tmpl =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "<|im_start|>system\nDefault.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
      "{{ message['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  const auto dir = std::filesystem::temp_directory_path() / "kvaudit_chat_prompt_test";
  std::filesystem::create_directories(dir);
  const std::string config = (dir / "tokenizer_config.json").string();
  std::ofstream(config) << nlohmann::json{{"chat_template", tmpl}}.dump();
  return text::Tokenizer::from_hf_json(std::string(KVAUDIT_FIXTURES) + "/text/bytelevel/tokenizer.json", config);
}

std::string rendered(const text::Tokenizer& tok, const std::optional<std::string>& system) {
  return tok.decode(encode_chat_prompt(tok, "hi", system, false, "test"));
}

TEST(ChatPrompt, AnEmptySystemMessageIsAnEmptySystemTurnNotTheDefault) {
  const text::Tokenizer tok = tokenizer_with_default_system_turn();
  EXPECT_EQ(rendered(tok, std::nullopt), "<|im_start|>system\nDefault.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(rendered(tok, std::string()), "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(rendered(tok, std::string("Be brief.")),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace kvaudit::eval
