#include "text/chat_template.h"

namespace kvaudit::text {

std::string render_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& msgs,
                                 bool add_generation_prompt, const std::string& bos_token,
                                 const std::string& eos_token) {
  nlohmann::json ctx;
  ctx["messages"] = nlohmann::json::array();
  for (const auto& m : msgs) ctx["messages"].push_back({{"role", m.role}, {"content", m.content}});
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["tools"] = nullptr;
  ctx["documents"] = nullptr;
  if (!bos_token.empty()) ctx["bos_token"] = bos_token;
  if (!eos_token.empty()) ctx["eos_token"] = eos_token;
  return render_chat_template(tmpl, ctx);
}

std::string render_chat_template(const std::string& tmpl, const nlohmann::json& context) {
  runtime_error("chat templates: interpreter not built yet");
}

}  // namespace kvaudit::text
