#include "serve/metrics.h"

#include <fmt/format.h>

namespace kvaudit::serve {
namespace {

// A label value with Prometheus' escapes (backslash, double quote, newline).
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void metric(std::string& out, const char* name, const char* type, const char* help, int64_t value) {
  out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, value);
}

}  // namespace

void Metrics::count(const std::string& path, int status) {
  static const char* const kPaths[] = {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"};
  std::string p = "other";
  for (const char* k : kPaths)
    if (path == k) p = k;
  std::lock_guard lock(mu_);
  ++requests_[{p, status}];
}

std::string Metrics::prometheus(const SchedulerStats& s, const ServedKv& kv, const std::string& model) const {
  std::string out = fmt::format("# HELP kvaudit_info The served model and its KV plan.\n# TYPE kvaudit_info gauge\n"
                                "kvaudit_info{{model=\"{}\",kv=\"{}\",kv_storage=\"{}\",kv_compat=\"{}\"}} 1\n",
                                label(model), label(kv.plan), label(kv.storage), label(kv.compat));
  out += "# HELP kvaudit_http_requests_total HTTP requests answered, by path and status.\n"
         "# TYPE kvaudit_http_requests_total counter\n";
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, n] : requests_)
      out += fmt::format("kvaudit_http_requests_total{{path=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  }
  metric(out, "kvaudit_requests_running", "gauge", "Requests in the running batch.", s.running);
  metric(out, "kvaudit_requests_waiting", "gauge", "Requests queued for a batch slot.", s.waiting);
  metric(out, "kvaudit_requests_finished_total", "counter", "Requests generated to their end.", s.finished);
  metric(out, "kvaudit_requests_cancelled_total", "counter", "Requests whose client went away.", s.cancelled);
  metric(out, "kvaudit_prompt_tokens_total", "counter", "Prompt tokens prefilled.", s.prompt_tokens);
  metric(out, "kvaudit_generation_tokens_total", "counter", "Tokens generated (stop ids excluded).", s.generated_tokens);
  metric(out, "kvaudit_forward_calls_total", "counter", "Batched forward calls of the engine.", s.forward_calls);
  metric(out, "kvaudit_kv_cache_bytes", "gauge", "Bytes of stored K and V of the running sequences.", s.kv_bytes);
  return out;
}

}  // namespace kvaudit::serve
