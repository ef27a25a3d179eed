// The OpenAI wire format `kvaudit serve` speaks (SPEC.md §7): request bodies of /v1/chat/completions
// and /v1/completions read into one CompletionParams, and the response, stream chunk and error
// objects. JSON only; no HTTP and no engine here.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/sampler.h"
#include "text/chat_template.h"

namespace kvaudit::serve {

// A request the server refuses: HTTP status and OpenAI's error object
// {"error": {"message", "type", "param", "code"}}.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string type, std::string code, const std::string& message, std::string param = "")
      : std::runtime_error(message), status(status), type(std::move(type)), code(std::move(code)), param(std::move(param)) {}
  int status;
  std::string type;   // invalid_request_error, authentication_error, ...
  std::string code;   // model_not_found, context_length_exceeded, ...
  std::string param;  // the request field at fault ("" = none), OpenAI's error.param
};

nlohmann::json error_json(const std::string& message, const std::string& type, const std::string& code,
                          const std::string& param = "");

enum class Endpoint { kChat, kCompletion };

struct CompletionParams {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;                       // "" when the body names none
  std::vector<text::ChatMessage> messages; // kChat
  std::string prompt;                      // kCompletion
  std::optional<int> max_tokens;           // max_tokens / max_completion_tokens
  SamplingParams sampling;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;              // stream_options.include_usage
};

// Reads a request body; ApiError 400 (invalid_request_error, naming the field) on malformed JSON,
// a wrong type or an out-of-range value. n > 1, logprobs, tools and images are refused (400), not
// ignored; so is every field this server does not implement (penalties, logit_bias, top_k, ...)
// unless it holds its no-op value (presence_penalty 0, logit_bias {}, ...), and any unknown field.
CompletionParams parse_completion_request(const std::string& body, Endpoint endpoint);

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// The non-streaming response object (chat.completion / text_completion).
nlohmann::json completion_json(Endpoint endpoint, const std::string& id, int64_t created, const std::string& model,
                               const std::string& text, const std::string& finish_reason, const Usage& usage);

// One streamed chunk (chat.completion.chunk / text_completion). For chat, `first` adds the
// assistant role to the delta; finish_reason null while running.
nlohmann::json chunk_json(Endpoint endpoint, const std::string& id, int64_t created, const std::string& model,
                          const std::string& text, bool first, const std::optional<std::string>& finish_reason);

// The final usage chunk of a stream with stream_options.include_usage (empty choices).
nlohmann::json usage_chunk_json(Endpoint endpoint, const std::string& id, int64_t created, const std::string& model,
                                const Usage& usage);

}  // namespace kvaudit::serve
