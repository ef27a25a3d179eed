// kvaudit serve (SPEC.md §7): the model under an audited KV plan behind an OpenAI-compatible HTTP
// server (serve/server.h). Prints one JSON line {"listening": URL, "model": ID} on stdout once it
// accepts requests (with --port 0, the port chosen); one log line per request on stderr.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/kv_options.h"
#include "serve/server.h"

namespace kvaudit::cli {

void add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server running the model under a KV plan "
                                          "(continuous batching)");
  auto o = std::make_shared<serve::ServeOptions>();
  auto quiet = std::make_shared<bool>(false);
  cmd->add_option("--model", o->model_path, kModelHelp)->required();
  add_kv_options(cmd, o->kv);
  cmd->add_option("--host", o->host, "address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", o->port, "port (default 8000; 0 = any free port, printed)");
  cmd->add_option("--api-key", o->api_key,
                  "require 'Authorization: Bearer KEY' on /v1/* and /metrics (or $KVAUDIT_API_KEY, which `ps` does not show)")
      ->envname("KVAUDIT_API_KEY");
  cmd->add_option("--served-model-name", o->served_name, "the model id clients name (default: the model file's stem)");
  cmd->add_option("--max-batch", o->max_batch, "sequences per batch (continuous batching), default 16");
  cmd->add_option("--max-queue", o->max_queue,
                  "requests waiting for a batch slot (beyond the batch's free slots) before 429, default 64")
      ->check(kNonNegativeInt);
  // CLI11 reads "-5" into a size_t as 2^64 - 5 (no limit at all): the range is checked on the text.
  cmd->add_option("--max-body-bytes", o->max_body_bytes, "request body limit (413 beyond), default 1048576")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  cmd->add_option("--max-prompt-tokens", o->max_prompt_tokens, "prompt limit (400 context_length_exceeded beyond); default the model's context")
      ->check(kPositiveInt);
  cmd->add_option("--max-new-tokens", o->max_tokens_default, "max_tokens of a request that gives none, default 256")
      ->check(kPositiveInt);
  cmd->add_option("--device", o->device, "cpu|cuda (default: cuda when built with it)");
  add_threads_option(cmd, o->threads);
  cmd->add_flag("--random-weights", o->random_weights, "config.json only: deterministic random weights");
  cmd->add_flag("--quiet", *quiet, "no request log on stderr");
  cmd->callback([o, quiet] {
    serve::ServeHooks hooks;
    hooks.on_listening = [](const std::string& url, const std::string& id) {
      std::printf("%s\n", nlohmann::json{{"listening", url}, {"model", id}}.dump().c_str());
      std::fflush(stdout);
    };
    if (!*quiet) hooks.log = [](const std::string& line) { std::fprintf(stderr, "kvaudit serve: %s\n", line.c_str()); };
    serve::run_server(*o, hooks);
  });
}

}  // namespace kvaudit::cli
