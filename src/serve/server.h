// `kvaudit serve` (SPEC.md §7): the model under the audited KV plan behind an OpenAI-compatible HTTP
// API (cpp-httplib) — /v1/chat/completions and /v1/completions (streamed by server-sent events or
// not), /v1/models, /health, /metrics (Prometheus text) — with continuous batching (serve/scheduler.h).
// Safe defaults: loopback only, optional Bearer key, body / prompt / queue limits, OpenAI-style JSON
// errors (400 bad JSON or value, 401 key, 404 model or path, 413 too large, 429 queue full, 503
// shutting down). SIGTERM or SIGINT: stop taking requests, finish those in flight, return.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

#include "eval/kv_setup.h"

namespace kvaudit::serve {

struct ServeOptions {
  std::string model_path;
  std::string served_name;           // the model id clients name; "" = the model file's stem
  eval::KvOptions kv;                // --kv / --kv-policy / --kv-storage / --compat
  std::string host = "127.0.0.1";
  int port = 8000;                   // 0: any free port (reported through on_listening)
  std::string api_key;               // "" = no authentication
  int max_batch = 16;                // sequences per forward call
  int max_queue = 64;                // requests waiting for a batch slot before 429
  size_t max_body_bytes = 1 << 20;   // request body limit (413)
  int max_prompt_tokens = 0;         // 413 beyond; 0 = the model's context length
  int max_tokens_default = 256;      // a request's max_tokens when it gives none (SPEC.md §4's default)
  std::string device;                // "" = engine::default_device()
  int threads = 0;
  bool random_weights = false;
};

struct ServeHooks {
  // Called once the socket listens, with its base URL (http://host:port) and the served model id.
  std::function<void(const std::string& url, const std::string& model_id)> on_listening;
  // One line per finished request (method, path, status, time) and lifecycle events.
  std::function<void(const std::string& line)> log;
};

// Loads the model, serves until SIGTERM / SIGINT, drains, returns. UsageError for bad options (before
// the model loads where possible) or a port that cannot be bound.
void run_server(const ServeOptions& opt, const ServeHooks& hooks);

}  // namespace kvaudit::serve
