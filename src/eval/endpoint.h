// An OpenAI-compatible server (vLLM, llama.cpp's server, `kvaudit serve`) as the source of eval
// responses (SPEC.md §4 "Endpoint audit"): the user message goes to /v1/chat/completions (the
// server applies its chat template) or, with raw, the text to /v1/completions; greedy
// (temperature 0), max_tokens = --max-new-tokens. Requests run `concurrency` at a time; a
// connection failure, timeout, 429 or 5xx is retried with exponential backoff.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eval/runner.h"

namespace kvaudit::eval {

struct EndpointOptions {
  std::string url;         // http(s)://host:port[/prefix][/v1]
  std::string flag = "--endpoint";  // the flag that gave url, for messages
  std::string model;       // the model id sent; "" = the first one GET /v1/models lists
  std::string api_key;     // sent as Bearer when non-empty
  std::optional<std::string> system;  // a system message before the user's, as --system ("" included)
  bool raw = false;        // /v1/completions with the prompt text, as --raw
  int max_tokens = 256;
  int concurrency = 8;     // requests in flight at once
  int retries = 5;         // retries of one request after the first attempt
  double timeout_s = 600;  // one attempt's read / write timeout
  double backoff_s = 0.5;  // first retry's wait, doubled each time (capped at 30 s)
};

class Endpoint {
 public:
  // UsageError for a URL that is not http(s)://host[:port][/path]. Asks /v1/models for the model
  // id (when not given) and the KV plan a kvaudit server reports; UsageError when it cannot be
  // reached or does not list the model.
  explicit Endpoint(EndpointOptions opt);
  ~Endpoint();

  const std::string& model() const { return opt_.model; }
  // The KV plan the server reports in /v1/models ("kv": kvaudit serve's --kv), else "".
  const std::string& kv() const { return kv_; }
  const std::string& url() const { return opt_.url; }

  // One greedy response text. Throws (runtime error naming the URL) once retries are spent, or at
  // once on a 4xx other than 408 / 429.
  std::string respond(const std::string& user) const;
  // respond() over many messages, `concurrency` at a time; results in order.
  std::vector<std::string> respond_all(const std::vector<const std::string*>& users) const;

 private:
  EndpointOptions opt_;
  std::string scheme_host_port_, base_path_, kv_;
};

// A Responder over the prompts whose scheme run `endpoints[i]` answers (schemes[i] matched by
// name to names[i]); every job of a chunk is sent at once, `concurrency` per endpoint in flight.
Responder endpoint_responder(const std::vector<std::string>& names, const std::vector<const Endpoint*>& endpoints);

}  // namespace kvaudit::eval
