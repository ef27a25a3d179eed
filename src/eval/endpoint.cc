#include "eval/endpoint.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kvaudit::eval {
namespace {

using nlohmann::json;

constexpr double kMaxBackoffSeconds = 30;
constexpr time_t kConnectTimeoutSeconds = 10;

// A status worth another attempt: the server is busy, overloaded, restarting or timed out.
bool retryable(int status) { return status == 408 || status == 429 || status >= 500; }

std::string error_text(const httplib::Result& res) {
  if (!res) return "connection failed (" + httplib::to_string(res.error()) + ")";
  std::string msg = res->body.substr(0, 300);
  const json j = json::parse(res->body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message"))
    msg = j["error"]["message"].is_string() ? j["error"]["message"].get<std::string>() : j["error"]["message"].dump();
  return "HTTP " + std::to_string(res->status) + ": " + msg;
}

}  // namespace

Endpoint::Endpoint(EndpointOptions opt) : opt_(std::move(opt)) {
  static const std::regex kUrl(R"(^(https?://[^/?#]+)(/[^?#]*)?$)");
  std::smatch m;
  if (!std::regex_match(opt_.url, m, kUrl))
    usage_error("{} '{}': expected http(s)://host[:port][/path]", opt_.flag, opt_.url);
  scheme_host_port_ = m[1];
  base_path_ = m[2];
  while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
  if (base_path_.ends_with("/v1")) base_path_.resize(base_path_.size() - 3);  // the OpenAI client's base_url form
  if (opt_.concurrency < 1) usage_error("--endpoint-concurrency must be >= 1 (got {})", opt_.concurrency);
  if (opt_.retries < 0) usage_error("--endpoint-retries must be >= 0 (got {})", opt_.retries);
  if (!(opt_.timeout_s > 0)) usage_error("--endpoint-timeout must be > 0 (got {})", opt_.timeout_s);

  httplib::Client cli(scheme_host_port_);
  cli.set_connection_timeout(kConnectTimeoutSeconds);
  cli.set_read_timeout(time_t(opt_.timeout_s));
  httplib::Headers headers;
  if (!opt_.api_key.empty()) headers.emplace("Authorization", "Bearer " + opt_.api_key);
  const auto res = cli.Get(base_path_ + "/v1/models", headers);
  if (!res || res->status != 200) usage_error("{} {}: GET /v1/models: {}", opt_.flag, opt_.url, error_text(res));
  const json j = json::parse(res->body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array())
    usage_error("{} {}: GET /v1/models did not return an OpenAI model list", opt_.flag, opt_.url);
  std::vector<std::string> ids;
  for (const auto& d : j["data"])
    if (d.is_object() && d.contains("id") && d["id"].is_string()) {
      ids.push_back(d["id"].get<std::string>());
      if ((opt_.model.empty() && ids.size() == 1) || opt_.model == ids.back())
        kv_ = d.contains("kv") && d["kv"].is_string() ? d["kv"].get<std::string>() : "";
    }
  if (ids.empty()) usage_error("{} {}: the server lists no model", opt_.flag, opt_.url);
  if (opt_.model.empty()) opt_.model = ids.front();
  else if (std::find(ids.begin(), ids.end(), opt_.model) == ids.end())
    usage_error("--endpoint-model '{}': {} serves {}", opt_.model, opt_.url, json(ids).dump());
}

Endpoint::~Endpoint() = default;

std::string Endpoint::respond(const std::string& user) const {
  json body = {{"model", opt_.model}, {"max_tokens", opt_.max_tokens}, {"temperature", 0}};
  if (opt_.raw) {
    body["prompt"] = user;
  } else {
    body["messages"] = json::array();
    if (opt_.system) body["messages"].push_back({{"role", "system"}, {"content", *opt_.system}});
    body["messages"].push_back({{"role", "user"}, {"content", user}});
  }
  const std::string path = base_path_ + (opt_.raw ? "/v1/completions" : "/v1/chat/completions");
  const std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
  httplib::Headers headers;
  if (!opt_.api_key.empty()) headers.emplace("Authorization", "Bearer " + opt_.api_key);

  double wait_s = opt_.backoff_s;
  std::string last;
  for (int attempt = 0; attempt <= opt_.retries; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
      wait_s = std::min(2 * wait_s, kMaxBackoffSeconds);
    }
    httplib::Client cli(scheme_host_port_);
    cli.set_connection_timeout(kConnectTimeoutSeconds);
    cli.set_read_timeout(time_t(opt_.timeout_s));
    cli.set_write_timeout(time_t(opt_.timeout_s));
    const auto res = cli.Post(path, headers, payload, "application/json");
    if (res && res->status == 200) {
      const json j = json::parse(res->body, nullptr, false);
      if (j.is_object() && j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
        const json& c = j["choices"][0];
        const json& text = opt_.raw ? c.value("text", json()) : (c.contains("message") ? c["message"].value("content", json()) : json());
        if (text.is_string()) return text.get<std::string>();
        if (text.is_null() && (opt_.raw ? c.contains("text") : c.contains("message"))) return "";
      }
      last = "a response without choices[0]." + std::string(opt_.raw ? "text" : "message.content");
      continue;  // a garbled answer: try again
    }
    last = error_text(res);
    if (res && !retryable(res->status)) break;
  }
  runtime_error("{} {}: {} failed after {} attempt(s): {}", opt_.flag, opt_.url, path, opt_.retries + 1, last);
}

std::vector<std::string> Endpoint::respond_all(const std::vector<const std::string*>& users) const {
  std::vector<std::string> out(users.size());
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex mu;
  const auto worker = [&] {
    for (size_t i; (i = next++) < users.size();) {
      try {
        out[i] = respond(*users[i]);
      } catch (...) {
        std::lock_guard lock(mu);
        if (!error) error = std::current_exception();
        next = users.size();  // stop taking new work
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::min<int>(opt_.concurrency, int(users.size())); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return out;
}

Responder endpoint_responder(const std::vector<std::string>& names, const std::vector<const Endpoint*>& endpoints) {
  return [names, endpoints](const std::vector<const Prompt*>& prompts, const std::vector<const SchemeRun*>& schemes) {
    std::vector<std::vector<size_t>> jobs(endpoints.size());  // job indices per endpoint
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto it = std::find(names.begin(), names.end(), schemes[i]->name);
      if (it == names.end()) throw std::logic_error("endpoint_responder: no endpoint for scheme " + schemes[i]->name);
      jobs[size_t(it - names.begin())].push_back(i);
    }
    std::vector<Response> out(prompts.size());
    std::vector<std::exception_ptr> errors(endpoints.size());
    std::vector<std::thread> threads;
    for (size_t e = 0; e < endpoints.size(); ++e)
      threads.emplace_back([&, e] {
        try {
          std::vector<const std::string*> users;
          for (size_t i : jobs[e]) users.push_back(&prompts[i]->text);
          const std::vector<std::string> texts = endpoints[e]->respond_all(users);
          for (size_t k = 0; k < jobs[e].size(); ++k) out[jobs[e][k]].text = texts[k];
        } catch (...) {
          errors[e] = std::current_exception();
        }
      });
    for (auto& t : threads) t.join();
    for (const auto& err : errors)
      if (err) std::rethrow_exception(err);
    return out;
  };
}

}  // namespace kvaudit::eval
