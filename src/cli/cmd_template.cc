// `kvaudit template` (SPEC.md §7): the model's chat template rendered for an OpenAI-style message
// list, byte-exact with nothing added; raise_exception -> its message, exit 2.
#include <cstdio>
#include <fstream>
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
  std::ifstream f(a.messages, std::ios::binary);
  if (!f) usage_error("cannot open --messages '{}'", a.messages);
  nlohmann::json in;
  try {
    in = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    usage_error("--messages '{}' is not valid JSON: {}", a.messages, e.what());
  }
  // A list of messages, or an object {"messages": [...], other template variables (tools, ...)}.
  if (!in.is_array() && !(in.is_object() && in.contains("messages") && in.at("messages").is_array()))
    usage_error("--messages '{}': expected a JSON list of messages or an object with \"messages\"", a.messages);
  const text::Tokenizer tok = text::Tokenizer::load_for_model(a.model);
  const auto tmpl = tok.chat_template();
  if (!tmpl) usage_error("--model '{}' has no chat template", a.model);
  nlohmann::json ctx = text::chat_context({}, !a.no_generation_prompt, tok.bos_token(), tok.eos_token());
  if (in.is_array()) {
    ctx["messages"] = in;
  } else {
    for (const auto& [k, v] : in.items()) ctx[k] = v;
  }
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
