// libFuzzer target for message files (`kvaudit template --messages`, SPEC.md §7): the JSON list or
// {"messages": [...], tools...} object, then rendered through real chat templates (SmolLM2,
// Qwen2.5, Llama-3.1), which index messages, roles, contents and tool calls of any shape. Any
// input either renders or throws UsageError (TemplateRaised included).
// Build and run: scripts/fuzz.sh 120 text_messages
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fuzz_file.h"
#include "io/atomic_file.h"
#include "text/chat_template.h"

#ifndef KVAUDIT_FIXTURES
#error "build with -DKVAUDIT_FIXTURES=\"<repo>/tests/fixtures\""
#endif

namespace {
const std::vector<std::string>& templates() {
  static const std::vector<std::string> t = [] {
    std::vector<std::string> v;
    for (const char* name : {"SmolLM2-135M-Instruct", "Qwen2.5-7B-Instruct", "Llama-3.1-8B-Instruct"})
      v.push_back(kvaudit::io::read_file(std::string(KVAUDIT_FIXTURES) + "/text/templates/" + name + ".jinja"));
    return v;
  }();
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit;
  const std::string path = fuzz::write_input("messages.json", data, size);
  nlohmann::json vars;
  try {
    vars = text::read_messages_file(path);
  } catch (const UsageError&) {
    return 0;
  }
  if (!vars.is_object() || !vars.contains("messages") || !vars["messages"].is_array()) std::abort();
  for (const std::string& tmpl : templates()) {
    nlohmann::json ctx = text::chat_context({}, true, "<s>", "</s>");
    for (const auto& [k, v] : vars.items()) ctx[k] = v;
    try {
      (void)text::render_chat_template(tmpl, ctx, /*now_unix=*/0);
    } catch (const UsageError&) {
    }
  }
  return 0;
}
