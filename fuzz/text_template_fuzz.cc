// libFuzzer target for the Jinja-subset interpreter (SPEC.md §2): random templates and contexts
// either render or throw UsageError / TemplateRaised; never crash, hang or throw anything else.
// Input: template text, optionally followed by "\x00" and a JSON context (messages etc.).
// Build and run: scripts/fuzz.sh
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string tmpl = in.substr(0, nul);
  nlohmann::json ctx = nlohmann::json::parse(nul == std::string::npos ? std::string("{}") : in.substr(nul + 1), nullptr,
                                             /*allow_exceptions=*/false);
  if (!ctx.is_object()) ctx = nlohmann::json::object();
  if (!ctx.contains("messages"))
    ctx["messages"] = {{{"role", "system"}, {"content", "sys"}}, {{"role", "user"}, {"content", "hi 日本"}},
                       {{"role", "assistant"}, {"content", " ok "}}};
  ctx["add_generation_prompt"] = true;
  ctx["bos_token"] = "<s>";
  try {
    (void)kvaudit::text::render_chat_template(tmpl, ctx, /*now_unix=*/0);
  } catch (const kvaudit::UsageError&) {  // TemplateRaised included
  }
  return 0;
}
