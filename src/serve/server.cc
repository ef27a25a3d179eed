#include "serve/server.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/engine.h"
#include "kv/policy.h"
#include "model/model.h"
#include "serve/metrics.h"
#include "serve/openai_api.h"
#include "serve/scheduler.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace kvaudit::serve {
namespace {

using nlohmann::json;

// How long a streaming handler waits for new text before checking its client is still there.
constexpr auto kStreamPoll = std::chrono::milliseconds(500);
// Idle keep-alive connections close after this; it bounds how long shutdown waits on them.
constexpr time_t kKeepAliveSeconds = 2;

void send_error(httplib::Response& res, int status, const std::string& type, const std::string& code,
                const std::string& message, const std::string& param = "") {
  res.status = status;
  res.set_content(error_json(message, type, code, param).dump(), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_error(res, e.status, e.type, e.code, e.what(), e.param); }

// What /v1/models and /metrics say of the KV plan: the policy as resolved (a file's layers
// included), how its caches are stored, and the file it came from.
ServedKv served_kv(const kv::KvPolicy& policy, const eval::KvOptions& o) {
  return {policy.name(), policy.storage() == kv::Storage::kPacked ? "packed" : "simulated",
          policy.compat_paper() ? "paper" : "none", o.policy};
}

// Everything the handlers share.
class Service {
 public:
  explicit Service(const ServeOptions& opt) : opt_(opt) {
    if (opt_.max_batch < 1) usage_error("--max-batch must be >= 1 (got {})", opt_.max_batch);
    if (opt_.max_queue < 0) usage_error("--max-queue must be >= 0 (got {})", opt_.max_queue);
    if (opt_.max_tokens_default < 1) usage_error("--max-new-tokens must be >= 1 (got {})", opt_.max_tokens_default);
    if (opt_.port < 0 || opt_.port > 65535) usage_error("--port must be in 0..65535 (got {})", opt_.port);
    const engine::Device device = opt_.device.empty() ? engine::default_device() : engine::parse_device(opt_.device);
    model::LoadOptions lo;
    lo.random_weights = opt_.random_weights;
    eval::require_scheme_for_storage(!opt_.kv.spec.empty() || !opt_.kv.policy.empty(), opt_.kv);
    lo.compute_sha256 = eval::kv_needs_calibration(opt_.kv);  // the calibration cache's key
    model_ = std::make_unique<model::Model>(model::load_model(opt_.model_path, lo));
    tok_ = std::make_unique<text::Tokenizer>(text::Tokenizer::load_for_model(opt_.model_path));
    backend_ = engine::make_backend(device, *model_, {opt_.threads});
    auto policy = eval::make_kv_policy(opt_.kv, model_->config.n_layers, model_->weights_sha256);
    policy = eval::calibrate_if_needed(std::move(policy), *backend_, opt_.model_path);
    kv_ = served_kv(*policy, opt_.kv);

    SchedulerOptions so;
    so.max_batch = opt_.max_batch;
    so.max_queue = opt_.max_queue;
    so.stop_ids = model_->config.eos_ids;
    for (int id : tok_->eos_ids())  // end-of-turn ids stop too, as in `generate`
      if (std::find(so.stop_ids.begin(), so.stop_ids.end(), id) == so.stop_ids.end()) so.stop_ids.push_back(id);
    scheduler_ = std::make_unique<Scheduler>(*backend_, *tok_, std::move(policy), so);

    model_id_ = opt_.served_name.empty() ? std::filesystem::path(opt_.model_path).stem().string() : opt_.served_name;
    if (model_id_.empty()) model_id_ = std::filesystem::path(opt_.model_path).parent_path().filename().string();
    context_ = model_->config.max_position > 0 ? model_->config.max_position : 0;
    max_prompt_ = opt_.max_prompt_tokens > 0 ? opt_.max_prompt_tokens : context_;
    id_prefix_ = fmt::format("{:08x}", uint32_t(std::random_device{}()));
    created_ = int64_t(std::time(nullptr));
  }

  const std::string& model_id() const { return model_id_; }
  Metrics& metrics() { return metrics_; }
  std::atomic<bool> draining{false};
  std::atomic<int> in_flight{0};  // completion requests not yet fully answered

  bool authorized(const httplib::Request& req, httplib::Response& res) const {
    if (opt_.api_key.empty() || req.get_header_value("Authorization") == "Bearer " + opt_.api_key) return true;
    send_error(res, 401, "authentication_error", "invalid_api_key", "missing or wrong API key (Authorization: Bearer KEY)");
    return false;
  }

  json model_json() const {
    return {{"id", model_id_},          {"object", "model"},         {"created", created_},
            {"owned_by", "kvaudit"},    {"root", opt_.model_path},   {"max_model_len", context_},
            {"kv", kv_.plan},           {"kv_storage", kv_.storage}, {"kv_compat", kv_.compat},
            {"kv_policy_file", kv_.policy_file.empty() ? json(nullptr) : json(kv_.policy_file)}};
  }

  void models(httplib::Response& res) const {
    res.set_content(json{{"object", "list"}, {"data", json::array({model_json()})}}.dump(), "application/json");
  }

  // GET /v1/models/{id} (the openai client's models.retrieve).
  void model(const std::string& id, httplib::Response& res) const {
    if (id != model_id_)
      return send_error(res, 404, "invalid_request_error", "model_not_found",
                        fmt::format("the model '{}' does not exist (this server serves '{}')", id, model_id_));
    res.set_content(model_json().dump(), "application/json");
  }

  void health(httplib::Response& res) const {
    const SchedulerStats s = scheduler_->stats();
    res.status = draining ? 503 : 200;
    res.set_content(json{{"status", draining ? "draining" : "ok"}, {"running", s.running}, {"waiting", s.waiting}}.dump(),
                    "application/json");
  }

  void prometheus(httplib::Response& res) {
    res.set_content(metrics_.prometheus(scheduler_->stats(), kv_, model_id_),
                    "text/plain; version=0.0.4");
  }

  void complete(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);

 private:
  std::vector<int> encode(const CompletionParams& p) const;

  ServeOptions opt_;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<text::Tokenizer> tok_;
  std::unique_ptr<engine::Backend> backend_;
  std::unique_ptr<Scheduler> scheduler_;
  Metrics metrics_;
  std::string model_id_, id_prefix_;
  ServedKv kv_;
  int context_ = 0, max_prompt_ = 0;
  int64_t created_ = 0;
  std::atomic<uint64_t> next_id_{0};
};

// Chat: the model's template over the messages with the generation prompt, tokenized without
// special tokens (as `generate` and eval/chat_prompt.h); completions: the text with them, as
// `generate --raw`.
std::vector<int> Service::encode(const CompletionParams& p) const {
  if (p.endpoint == Endpoint::kCompletion) return tok_->encode(p.prompt, true);
  const auto tmpl = tok_->chat_template();
  if (!tmpl) throw ApiError(400, "invalid_request_error", "", "the model has no chat template; use /v1/completions");
  try {
    return tok_->encode(text::render_chat_template(*tmpl, p.messages, true, tok_->bos_token(), tok_->eos_token()), false);
  } catch (const UsageError& e) {  // the template's raise_exception, e.g. roles out of order
    throw ApiError(400, "invalid_request_error", "", std::string("chat template: ") + e.what());
  }
}

// One completion request, streamed or not. `in_flight` counts it until its last byte is handed to
// the connection, so shutdown waits for it.
void Service::complete(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  if (!authorized(req, res)) return;
  if (draining) return send_error(res, 503, "server_error", "shutting_down", "the server is shutting down");
  CompletionRequest cr;
  CompletionParams p;
  try {
    p = parse_completion_request(req.body, endpoint);
    if (!p.model.empty() && p.model != model_id_)
      throw ApiError(404, "invalid_request_error", "model_not_found",
                     fmt::format("the model '{}' does not exist (this server serves '{}')", p.model, model_id_));
    cr.prompt = encode(p);
    if (cr.prompt.empty()) throw ApiError(400, "invalid_request_error", "", "the prompt is empty");
    if (max_prompt_ > 0 && int(cr.prompt.size()) > max_prompt_)
      throw ApiError(400, "invalid_request_error", "context_length_exceeded",  // 400 as vLLM: clients catch BadRequestError
                     fmt::format("the prompt has {} tokens; this server takes at most {}", cr.prompt.size(), max_prompt_));
    const int room = context_ > 0 ? context_ - int(cr.prompt.size()) : opt_.max_tokens_default;
    if (p.max_tokens && context_ > 0 && *p.max_tokens > room)
      throw ApiError(400, "invalid_request_error", "context_length_exceeded",
                     fmt::format("prompt ({} tokens) + max_tokens ({}) exceed the model's context of {}",
                                 cr.prompt.size(), *p.max_tokens, context_));
    if (room < 1)
      throw ApiError(400, "invalid_request_error", "context_length_exceeded", "the prompt fills the model's context");
    cr.max_tokens = p.max_tokens ? *p.max_tokens : std::min(opt_.max_tokens_default, room);
  } catch (const ApiError& e) {
    return send_error(res, e);
  }
  cr.sampling = p.sampling;
  cr.seed = p.seed ? *p.seed : std::random_device{}() * uint64_t(0x9E3779B97F4A7C15ull) + next_id_;
  cr.stop = p.stop;
  const Usage usage0{int(cr.prompt.size()), 0};
  auto job = std::make_shared<Job>(std::move(cr));
  if (!scheduler_->submit(job)) {
    res.set_header("Retry-After", "1");  // a queued request takes about a generation's time
    return send_error(res, 429, "rate_limit_error", "queue_full",
                      fmt::format("the request queue is full ({} waiting); retry later", opt_.max_queue));
  }
  ++in_flight;
  const std::string id = fmt::format("{}-{}{:x}", endpoint == Endpoint::kChat ? "chatcmpl" : "cmpl", id_prefix_, next_id_++);
  const int64_t created = int64_t(std::time(nullptr));

  if (!p.stream) {
    // The job until it ends or `deadline` passes.
    const auto wait_until = [job](std::chrono::steady_clock::time_point deadline) {
      Job::Snapshot s;
      for (auto now = std::chrono::steady_clock::now(); now < deadline; now = std::chrono::steady_clock::now()) {
        s = job->wait(s.text.size(), std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                                         std::chrono::milliseconds(1));
        if (s.finish != Finish::kRunning) break;
      }
      return s;
    };
    const auto body = [=, this](const Job::Snapshot& s) {
      return completion_json(endpoint, id, created, model_id_, s.text, finish_name(s.finish),
                             {usage0.prompt_tokens, s.completion_tokens})
          .dump(-1, ' ', false, json::error_handler_t::replace);
    };
    // HTTP/1.0 has no chunked encoding: such a client waits for the plain response, uncancelled.
    const bool http10 = req.version == "HTTP/1.0";
    const Job::Snapshot s = wait_until(std::chrono::steady_clock::now() +
                                       (http10 ? std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::hours(24 * 365))
                                               : kStreamPoll));
    if (s.finish != Finish::kRunning) {  // short: a plain response with its status
      if (s.finish == Finish::kError) send_error(res, 500, "server_error", "", "generation failed: " + s.error);
      else res.set_content(body(s), "application/json");
      --in_flight;
      return;
    }
    // Longer: the response is sent chunked, a space (JSON's leading whitespace) each kStreamPoll
    // until the body, so a client that went away fails a write and its generation is cancelled
    // (httplib 0.11 has no other sign of a closed connection). The status is 200 by then: a
    // generation that fails later answers with the error object. The charset parameter keeps
    // httplib from gzipping it (it compresses "application/json" exactly): a compressor holds the
    // spaces back until the body, and a gzip client (the openai one) that left would go unnoticed.
    res.set_chunked_content_provider(
        "application/json; charset=utf-8",
        [=](size_t, httplib::DataSink& sink) {
          const Job::Snapshot t = wait_until(std::chrono::steady_clock::now() + kStreamPoll);
          std::string out = " ";
          if (t.finish == Finish::kError) out = error_json("generation failed: " + t.error, "server_error", "").dump();
          else if (t.finish != Finish::kRunning) out = body(t);
          if (!sink.is_writable() || !sink.write(out.data(), out.size())) {
            job->cancel();
            return false;
          }
          if (t.finish != Finish::kRunning) sink.done();
          return true;
        },
        [this, job](bool) {
          job->cancel();  // no-op when it finished
          --in_flight;
        });
    return;
  }
  struct Stream {
    size_t sent = 0;
    bool first = true, finished = false;
  };
  auto st = std::make_shared<Stream>();
  const auto sse = [](const json& j) { return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"; };
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [=, this](size_t, httplib::DataSink& sink) {
        if (!sink.is_writable()) {
          job->cancel();
          return false;
        }
        const Job::Snapshot s = job->wait(st->sent, kStreamPoll);
        std::string out;
        if (s.text.size() > st->sent || st->first) {
          out += sse(chunk_json(endpoint, id, created, model_id_, s.text.substr(st->sent), st->first, std::nullopt));
          st->sent = s.text.size();
          st->first = false;
        }
        if (s.finish == Finish::kError) {
          out += sse(error_json("generation failed: " + s.error, "server_error", ""));
        } else if (s.finish != Finish::kRunning) {
          out += sse(chunk_json(endpoint, id, created, model_id_, "", false, std::string(finish_name(s.finish))));
          if (p.include_usage) out += sse(usage_chunk_json(endpoint, id, created, model_id_, {usage0.prompt_tokens, s.completion_tokens}));
        }
        if (s.finish != Finish::kRunning) out += "data: [DONE]\n\n";
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          job->cancel();
          return false;
        }
        if (s.finish != Finish::kRunning) {
          st->finished = true;
          sink.done();
        }
        return true;
      },
      [this, job](bool) {  // the stream ended (completed, or the client went away)
        job->cancel();     // no-op when it finished
        --in_flight;
      });
}

// Blocks SIGTERM and SIGINT in this thread and every thread it starts, so that one thread
// (wait_for_signal) receives them.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace

void run_server(const ServeOptions& opt, const ServeHooks& hooks) {
  const auto log = [&](const std::string& s) { if (hooks.log) hooks.log(s); };
  const sigset_t stop_signals = block_stop_signals();
  Service svc(opt);

  httplib::Server http;
  // One worker per connection that may be open at once: the running batch, the queue (which
  // gets its 429 rather than waiting for a worker) and a margin for /health and /metrics.
  const size_t workers = size_t(opt.max_batch + opt.max_queue + 8);
  http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  http.set_payload_max_length(opt.max_body_bytes);
  http.set_keep_alive_timeout(kKeepAliveSeconds);
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours already
    // A path this server has, asked with another method: 405 naming the method it takes (also where
    // the HTTP library answered 400 first: a PUT or PATCH without a body).
    static const std::map<std::string, std::string> kMethod = {{"/v1/chat/completions", "POST"}, {"/v1/completions", "POST"},
                                                               {"/v1/models", "GET"}, {"/health", "GET"}, {"/metrics", "GET"}};
    if (res.status == 404 || res.status == 400)
      if (const auto it = kMethod.find(req.path); it != kMethod.end() && it->second != req.method) {
        res.set_header("Allow", it->second);
        send_error(res, 405, "invalid_request_error", "method_not_allowed",
                   fmt::format("{} takes {}, not {}", req.path, it->second, req.method));
        return httplib::Server::HandlerResponse::Handled;
      }
    std::string what = "bad request";
    if (res.status == 404) what = "no such path";
    else if (res.status == 413 && req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0)
      what = "a body sent as application/x-www-form-urlencoded (curl -d's default) is limited to 8 KiB by the HTTP "
             "library; send the JSON with Content-Type: application/json";
    else if (res.status == 413) what = "the request body is too large";
    else if (res.status >= 500) what = "internal error";
    send_error(res, res.status, res.status == 404 ? "not_found_error" : "invalid_request_error", "", what);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, 500, "server_error", "", what);
  });
  // Counted before the response goes out (cpp-httplib calls the logger after writing it): a client
  // that reads /metrics right after its answer finds the answer counted.
  http.set_post_routing_handler(
      [&](const httplib::Request& req, httplib::Response& res) { svc.metrics().count(req.path, res.status); });
  http.set_logger([&](const httplib::Request& req, const httplib::Response& res) {
    log(fmt::format("{} {} {}", req.method, req.path, res.status));
  });
  http.Post("/v1/chat/completions", [&](const httplib::Request& q, httplib::Response& r) { svc.complete(q, r, Endpoint::kChat); });
  http.Post("/v1/completions", [&](const httplib::Request& q, httplib::Response& r) { svc.complete(q, r, Endpoint::kCompletion); });
  http.Get("/v1/models", [&](const httplib::Request& q, httplib::Response& r) { if (svc.authorized(q, r)) svc.models(r); });
  http.Get(R"(/v1/models/(.+))", [&](const httplib::Request& q, httplib::Response& r) {
    if (svc.authorized(q, r)) svc.model(q.matches[1].str(), r);
  });
  http.Get("/health", [&](const httplib::Request&, httplib::Response& r) { svc.health(r); });
  http.Get("/metrics", [&](const httplib::Request& q, httplib::Response& r) { if (svc.authorized(q, r)) svc.prometheus(r); });

  int port = opt.port;
  if (port == 0) port = http.bind_to_any_port(opt.host);
  else if (!http.bind_to_port(opt.host, port)) port = -1;
  if (port <= 0) usage_error("--host {} --port {}: cannot listen there (in use, or not an address of this machine)", opt.host, opt.port);

  // SIGTERM / SIGINT: refuse new requests (503), wait for those in flight, then stop listening.
  // A second signal while draining stops at once (exit 1), as uvicorn does: a long generation
  // need not be waited for.
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    svc.draining = true;
    log(fmt::format("signal {}: draining {} request(s) (a second signal stops without waiting)", sig,
                    svc.in_flight.load()));
    const timespec poll{0, 20'000'000};
    while (svc.in_flight > 0) {
      siginfo_t info;
      if (sigtimedwait(&stop_signals, &info, &poll) > 0) {
        log(fmt::format("signal {}: stopping with {} request(s) unanswered", info.si_signo, svc.in_flight.load()));
        std::_Exit(1);
      }
    }
    http.stop();
  });
  if (hooks.on_listening) hooks.on_listening(fmt::format("http://{}:{}", opt.host, port), svc.model_id());
  http.listen_after_bind();
  const bool by_signal = svc.draining;
  if (!by_signal) pthread_kill(stopper.native_handle(), SIGTERM);  // listening failed: let the stopper exit
  stopper.join();
  if (!by_signal) runtime_error("the HTTP server on port {} stopped unexpectedly", port);
  log("stopped");
}

}  // namespace kvaudit::serve
