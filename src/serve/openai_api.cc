#include "serve/openai_api.h"

#include <cmath>
#include <set>

#include <fmt/format.h>

namespace kvaudit::serve {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw ApiError(400, "invalid_request_error", "", fmt::format("'{}': {}", param, message), param);
}

// Fields read below.
const std::set<std::string> kHandled = {"model",  "messages", "prompt",        "max_tokens",     "max_completion_tokens",
                                        "temperature", "top_p", "seed", "stop", "stream", "stream_options", "n"};
// Fields that change nothing here: client metadata.
const std::set<std::string> kMetadata = {"user",         "metadata",           "store",           "service_tier",
                                         "parallel_tool_calls", "safety_identifier", "prompt_cache_key"};

// OpenAI / vLLM fields kvaudit serve does not implement: accepted only at the value that makes them
// a no-op (what clients such as LangChain send by default) or null ("not set"); any other value is
// refused, never ignored.
const std::set<std::string> kUnimplemented = {
    "presence_penalty", "frequency_penalty", "repetition_penalty", "min_p", "min_tokens", "top_logprobs", "top_k",
    "logit_bias", "stop_token_ids", "ignore_eos", "tool_choice", "suffix", "logprobs", "echo", "best_of",
    "tools", "functions", "response_format",
    // vLLM's extensions at their defaults, and newer OpenAI fields clients send as null
    "skip_special_tokens", "spaces_between_special_tokens", "include_stop_str_in_output", "add_generation_prompt",
    "continue_final_message", "chat_template_kwargs", "modalities", "reasoning_effort", "prediction", "audio"};

bool is_no_op(const std::string& key, const json& v) {
  if (!kUnimplemented.count(key)) return false;  // unknown fields: refused whatever their value
  if (v.is_null()) return true;
  if (key == "presence_penalty" || key == "frequency_penalty" || key == "min_p" || key == "min_tokens" ||
      key == "top_logprobs")
    return v.is_number() && v.get<double>() == 0;
  if (key == "repetition_penalty") return v.is_number() && v.get<double>() == 1;
  if (key == "top_k") return v.is_number_integer() && (v.get<int64_t>() == -1 || v.get<int64_t>() == 0);
  if (key == "logit_bias") return v.is_object() && v.empty();
  if (key == "stop_token_ids") return v.is_array() && v.empty();
  if (key == "ignore_eos") return v.is_boolean() && !v.get<bool>();
  if (key == "tool_choice") return v.is_string() && v.get<std::string>() == "none";
  if (key == "suffix") return v.is_string() && v.get<std::string>().empty();
  if (key == "logprobs" || key == "echo") return v.is_boolean() && !v.get<bool>();
  if (key == "best_of") return v.is_number_integer() && v.get<int64_t>() == 1;
  // Special tokens never reach the text here, the chat prompt always ends with the assistant's turn.
  if (key == "skip_special_tokens" || key == "spaces_between_special_tokens" || key == "add_generation_prompt")
    return v.is_boolean() && v.get<bool>();
  if (key == "include_stop_str_in_output" || key == "continue_final_message") return v.is_boolean() && !v.get<bool>();
  if (key == "chat_template_kwargs") return v.is_object() && v.empty();
  if (key == "modalities") return v == json::array({"text"});
  return false;  // tools, functions, response_format, reasoning_effort, prediction, audio: only null is a no-op
}

// A message's content: a string, or OpenAI's list of parts of which only text parts are accepted.
std::string message_content(const json& c, size_t i) {
  const std::string param = fmt::format("messages[{}].content", i);
  if (c.is_null()) return "";
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) bad(param, "expected a string or a list of text parts");
  std::string out;
  for (const auto& part : c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      bad(param, "only {\"type\": \"text\", \"text\": ...} parts are supported");
    out += part["text"].get<std::string>();
  }
  return out;
}

double number(const json& body, const char* key, double lo, double hi, double def) {
  if (!body.contains(key) || body[key].is_null()) return def;
  if (!body[key].is_number()) bad(key, "expected a number");
  const double v = body[key].get<double>();
  if (!(v >= lo && v <= hi)) bad(key, fmt::format("must be in [{}, {}] (got {})", lo, hi, v));
  return v;
}

}  // namespace

json error_json(const std::string& message, const std::string& type, const std::string& code, const std::string& param) {
  return {{"error", {{"message", message}, {"type", type}, {"param", param.empty() ? json(nullptr) : json(param)},
                     {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

CompletionParams parse_completion_request(const std::string& body_text, Endpoint endpoint) {
  const json body = json::parse(body_text, nullptr, false);
  if (body.is_discarded()) throw ApiError(400, "invalid_request_error", "", "the request body is not valid JSON");
  if (!body.is_object()) throw ApiError(400, "invalid_request_error", "", "the request body must be a JSON object");
  CompletionParams p;
  p.endpoint = endpoint;
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) bad("model", "expected a string");
    p.model = body["model"].get<std::string>();
  }
  if (endpoint == Endpoint::kChat) {
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
      bad("messages", "expected a non-empty list of messages");
    for (size_t i = 0; i < body["messages"].size(); ++i) {
      const json& m = body["messages"][i];
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        bad(fmt::format("messages[{}]", i), "expected an object with a string \"role\"");
      std::string role = m["role"].get<std::string>();
      // OpenAI's newer name for the system turn; chat templates know only "system".
      if (role == "developer") role = "system";
      // Tool messages need the tools this server refuses; any other role would be rendered as given.
      if (role != "system" && role != "user" && role != "assistant")
        bad(fmt::format("messages[{}].role", i), fmt::format("'{}' is not one of system, developer, user, assistant", role));
      // Only an assistant turn may leave its content out (OpenAI: it then carries tool calls).
      if (role != "assistant" && (!m.contains("content") || m["content"].is_null()))
        bad(fmt::format("messages[{}].content", i), "a " + role + " message needs its content");
      p.messages.push_back({role, message_content(m.value("content", json()), i)});
    }
  } else {
    const json pr = body.value("prompt", json());
    if (pr.is_string()) p.prompt = pr.get<std::string>();
    else if (pr.is_array() && pr.size() == 1 && pr[0].is_string()) p.prompt = pr[0].get<std::string>();
    else bad("prompt", "expected a string (or a list of one string)");
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (body.contains(key) && !body[key].is_null()) {
      // 10.0 is an integer to Python clients and to vLLM's validation.
      const json& v = body[key];
      const double x = v.is_number() ? v.get<double>() : 0;
      if (!v.is_number() || x != std::floor(x) || x < 1 || x > 1'000'000) bad(key, "expected an integer >= 1");
      p.max_tokens = int(x);
    }
  p.sampling.temperature = number(body, "temperature", 0, 2, 1.0);
  p.sampling.top_p = number(body, "top_p", 0, 1, 1.0);
  if (p.sampling.top_p <= 0) bad("top_p", "must be > 0");
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer()) bad("seed", "expected an integer");
    p.seed = body["seed"].is_number_unsigned() ? body["seed"].get<uint64_t>() : uint64_t(body["seed"].get<int64_t>());
  }
  if (body.contains("stop") && !body["stop"].is_null()) {
    const json& s = body["stop"];
    if (s.is_string()) p.stop.push_back(s.get<std::string>());
    else if (s.is_array() && s.size() <= 4 && std::all_of(s.begin(), s.end(), [](const json& x) { return x.is_string(); }))
      for (const auto& x : s) p.stop.push_back(x.get<std::string>());
    else bad("stop", "expected a string or a list of up to 4 strings");
  }
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) bad("stream", "expected true or false");
    p.stream = body["stream"].get<bool>();
  }
  if (body.contains("stream_options") && !body["stream_options"].is_null()) {
    const json& so = body["stream_options"];
    if (!so.is_object()) bad("stream_options", "expected an object");
    for (const auto& [key, v] : so.items()) {
      if (key != "include_usage") bad("stream_options." + key, "unknown field (kvaudit serve knows include_usage)");
      if (!v.is_null() && !v.is_boolean()) bad("stream_options.include_usage", "expected true or false");
      p.include_usage = v.is_boolean() && v.get<bool>();
    }
  }
  if (body.contains("n") && !body["n"].is_null() && body["n"] != 1) bad("n", "only n = 1 is supported");
  // The other endpoint's input would be ignored here: refused.
  if (endpoint == Endpoint::kChat && body.contains("prompt"))
    bad("prompt", "/v1/chat/completions takes \"messages\"; \"prompt\" belongs to /v1/completions");
  if (endpoint != Endpoint::kChat && body.contains("messages"))
    bad("messages", "/v1/completions takes \"prompt\"; \"messages\" belongs to /v1/chat/completions");
  for (const auto& [key, v] : body.items()) {
    if (kHandled.count(key) || kMetadata.count(key) || is_no_op(key, v)) continue;
    bad(key, kUnimplemented.count(key) ? "is not supported by kvaudit serve (only its no-op value is accepted)"
                                       : "unknown field (kvaudit serve does not implement it)");
  }
  return p;
}

json completion_json(Endpoint endpoint, const std::string& id, int64_t created, const std::string& model,
                     const std::string& text, const std::string& finish_reason, const Usage& usage) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason}, {"logprobs", nullptr}};
  if (endpoint == Endpoint::kChat) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
  return {{"id", id},
          {"object", endpoint == Endpoint::kChat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})},
          {"usage", {{"prompt_tokens", usage.prompt_tokens},
                     {"completion_tokens", usage.completion_tokens},
                     {"total_tokens", usage.prompt_tokens + usage.completion_tokens}}}};
}

json chunk_json(Endpoint endpoint, const std::string& id, int64_t created, const std::string& model,
                const std::string& text, bool first, const std::optional<std::string>& finish_reason) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason ? json(*finish_reason) : json(nullptr)},
                 {"logprobs", nullptr}};
  if (endpoint == Endpoint::kChat) {
    choice["delta"] = json::object();
    if (first) choice["delta"]["role"] = "assistant";
    if (!text.empty() || !finish_reason) choice["delta"]["content"] = text;
  } else {
    choice["text"] = text;
  }
  return {{"id", id},
          {"object", endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})}};
}

json usage_chunk_json(Endpoint endpoint, const std::string& id, int64_t created, const std::string& model,
                      const Usage& usage) {
  return {{"id", id},
          {"object", endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array()},
          {"usage", {{"prompt_tokens", usage.prompt_tokens},
                     {"completion_tokens", usage.completion_tokens},
                     {"total_tokens", usage.prompt_tokens + usage.completion_tokens}}}};
}

}  // namespace kvaudit::serve
