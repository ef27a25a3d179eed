// Chat templates: the model's own Jinja `chat_template`, run by a Jinja-subset interpreter
// (src/text/jinja/) with the environment transformers uses (trim_blocks, lstrip_blocks,
// raise_exception, strftime_now, tojson) so the output is byte-identical to
// `apply_chat_template(..., tokenize=False)` (SPEC.md §2).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kvaudit::text {

struct ChatMessage {
  std::string role;
  std::string content;
};

// Thrown by the template's raise_exception(msg); what() is exactly msg (exit 2, SPEC.md §7).
class TemplateRaised : public UsageError {
 public:
  using UsageError::UsageError;
};

// Renders with context {messages, add_generation_prompt, bos_token, eos_token}.
std::string render_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& msgs,
                                 bool add_generation_prompt, const std::string& bos_token,
                                 const std::string& eos_token);

// Renders with an arbitrary JSON object as the top-level context (e.g. {"messages": [...],
// "add_generation_prompt": true, "bos_token": "<s>", "tools": [...]}); messages may carry any fields.
// Errors: unsupported construct or syntax error -> UsageError "chat template line N: ...";
// raise_exception(msg) -> TemplateRaised with what() == msg.
// now_unix fixes the clock strftime_now reads (local time); by default the real clock.
std::string render_chat_template(const std::string& tmpl, const nlohmann::json& context,
                                 std::optional<int64_t> now_unix = std::nullopt);

// The context transformers' apply_chat_template gives a template: messages, add_generation_prompt,
// tools and documents (null), bos_token / eos_token when non-empty.
nlohmann::json chat_context(const std::vector<ChatMessage>& msgs, bool add_generation_prompt,
                            const std::string& bos_token, const std::string& eos_token);

// A message file (`kvaudit template --messages`): a JSON list of messages, or an object
// {"messages": [...], other template variables (tools, ...)}. Returns the template variables it sets
// ({"messages": [...], ...}). UsageError naming the file when it cannot be read, is not JSON or has
// neither shape.
nlohmann::json read_messages_file(const std::string& path);

}  // namespace kvaudit::text
