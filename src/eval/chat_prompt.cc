#include "eval/chat_prompt.h"

#include "core/error.h"
#include "text/chat_template.h"

namespace kvaudit::eval {

std::vector<int> encode_chat_prompt(const text::Tokenizer& tok, const std::string& user,
                                    const std::optional<std::string>& system, bool raw,
                                    const std::string& model_path) {
  if (raw) return tok.encode(user, true);
  const auto tmpl = tok.chat_template();
  if (!tmpl) usage_error("{}: the model has no chat template (use --raw)", model_path);
  std::vector<text::ChatMessage> msgs;
  if (system) msgs.push_back({"system", *system});  // "" too: an empty system turn, not the template's default
  msgs.push_back({"user", user});
  const std::string rendered =
      text::render_chat_template(*tmpl, msgs, true, tok.bos_token(), tok.eos_token());
  return tok.encode(rendered, false);
}

}  // namespace kvaudit::eval
