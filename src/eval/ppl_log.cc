#include "eval/ppl_log.h"

#include "core/error.h"
#include "eval/jsonl_log.h"

namespace kvaudit::eval {
namespace {

std::vector<double> sums_field(const nlohmann::json& j, const char* key, size_t n, const std::string& where) {
  if (!j.contains(key) || !j[key].is_array() || j[key].size() != n)
    usage_error("{}: '{}' must be a list of {} numbers (one per scheme)", where, key, n);
  std::vector<double> out;
  for (const auto& x : j[key]) {
    if (!x.is_number()) usage_error("{}: '{}' must be a list of {} numbers (one per scheme)", where, key, n);
    out.push_back(x.get<double>());
  }
  return out;
}

size_t count_field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_number_unsigned()) usage_error("{}: '{}' must be a non-negative integer", where, key);
  return j[key].get<size_t>();
}

}  // namespace

std::string ppl_log_header_line(const nlohmann::json& header) { return jsonl_line(header); }

std::string ppl_window_line(const PplWindowSums& w) {
  nlohmann::ordered_json j;
  j["window"] = w.window;
  j["n_targets"] = w.n_targets;
  j["nll"] = w.nll;  // shortest round-trip form: read back bit for bit
  j["kl"] = w.kl;
  return j.dump() + "\n";
}

PplLog read_ppl_log(const std::string& path, const nlohmann::json& header) {
  const JsonlLog lines = read_jsonl_log(path, header, "ppl");
  PplLog log;
  log.valid_bytes = lines.valid_bytes;
  log.has_header = lines.has_header;
  const size_t n_schemes = header.at("schemes").size();
  for (const auto& [where, j] : lines.lines) {
    PplWindowSums w;
    w.window = count_field(j, "window", where);
    w.n_targets = count_field(j, "n_targets", where);
    w.nll = sums_field(j, "nll", n_schemes, where);
    w.kl = sums_field(j, "kl", n_schemes, where);
    if (!log.windows.emplace(w.window, std::move(w)).second) usage_error("{}: window {} is listed twice", where, j["window"].get<size_t>());
  }
  return log;
}

}  // namespace kvaudit::eval
