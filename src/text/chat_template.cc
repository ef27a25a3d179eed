#include "text/chat_template.h"

#include "io/atomic_file.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/parser.h"

namespace kvaudit::text {

std::string render_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& msgs,
                                 bool add_generation_prompt, const std::string& bos_token,
                                 const std::string& eos_token) {
  return render_chat_template(tmpl, chat_context(msgs, add_generation_prompt, bos_token, eos_token));
}

nlohmann::json chat_context(const std::vector<ChatMessage>& msgs, bool add_generation_prompt,
                            const std::string& bos_token, const std::string& eos_token) {
  // As transformers' apply_chat_template: messages, tools/documents (None), add_generation_prompt,
  // and the tokenizer's special tokens that are set.
  nlohmann::json ctx;
  ctx["messages"] = nlohmann::json::array();
  for (const auto& m : msgs) ctx["messages"].push_back({{"role", m.role}, {"content", m.content}});
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["tools"] = nullptr;
  ctx["documents"] = nullptr;
  if (!bos_token.empty()) ctx["bos_token"] = bos_token;
  if (!eos_token.empty()) ctx["eos_token"] = eos_token;
  return ctx;
}

std::string render_chat_template(const std::string& tmpl, const nlohmann::json& context,
                                 std::optional<int64_t> now_unix) {
  const jinja::Body program = jinja::parse(tmpl);
  jinja::RenderOptions opts;
  opts.now_unix = now_unix;
  return jinja::render(program, context, opts);
}

nlohmann::json read_messages_file(const std::string& path) {
  nlohmann::json in;
  try {
    in = nlohmann::json::parse(io::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    usage_error("--messages '{}' is not valid JSON: {}", path, e.what());
  }
  if (in.is_array()) in = {{"messages", in}};
  if (!(in.is_object() && in.contains("messages") && in.at("messages").is_array()))
    usage_error("--messages '{}': expected a JSON list of messages or an object with \"messages\"", path);
  // OpenAI's message shapes: a string role; content a string, null or a list of parts. Anything else
  // would surface as the chat template's own type error, naming the template rather than the file.
  const nlohmann::json& messages = in.at("messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const nlohmann::json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m.at("role").is_string())
      usage_error("--messages '{}': message {} needs a string \"role\"", path, i);
    if (m.contains("content") && !(m.at("content").is_string() || m.at("content").is_null() || m.at("content").is_array()))
      usage_error("--messages '{}': message {}'s \"content\" must be a string, null or a list of parts", path, i);
  }
  return in;
}

}  // namespace kvaudit::text
