// `kvaudit template` (SPEC.md §7): the model's chat template rendered for an OpenAI-style message
// list, byte-exact with nothing added; raise_exception -> its message, exit 2.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace kvaudit::cli {
namespace {

struct TemplateArgs {
  std::string model, messages;
  bool no_generation_prompt = false;
};

void run_template(const TemplateArgs& a) {
  const nlohmann::json vars = text::read_messages_file(a.messages);
  const text::Tokenizer tok = text::Tokenizer::load_for_model(a.model);
  const auto tmpl = tok.chat_template();
  if (!tmpl) usage_error("--model '{}' has no chat template", a.model);
  nlohmann::json ctx = text::chat_context({}, !a.no_generation_prompt, tok.bos_token(), tok.eos_token());
  for (const auto& [k, v] : vars.items()) ctx[k] = v;
  const std::string out = text::render_chat_template(*tmpl, ctx);
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace

void add_template(CLI::App& app) {
  auto a = std::make_shared<TemplateArgs>();
  auto* cmd = app.add_subcommand("template", "print the chat template rendered for a message list, byte-exact");
  cmd->add_option("--model", a->model, "HF model directory or .gguf file")->required();
  cmd->add_option("--messages", a->messages, "JSON file: [{\"role\": ..., \"content\": ...}, ...]")->required();
  cmd->add_flag("--no-generation-prompt", a->no_generation_prompt, "add_generation_prompt=False");
  cmd->callback([a] { run_template(*a); });
}

}  // namespace kvaudit::cli
