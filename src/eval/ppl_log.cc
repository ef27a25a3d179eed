#include "eval/ppl_log.h"

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"

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

// File names need not be UTF-8; they are kept as they are, but shown with U+FFFD.
std::string shown(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

std::string ppl_log_header_line(const nlohmann::json& header) { return shown(header) + "\n"; }

std::string ppl_window_line(const PplWindowSums& w) {
  nlohmann::ordered_json j;
  j["window"] = w.window;
  j["n_targets"] = w.n_targets;
  j["nll"] = w.nll;  // shortest round-trip form: read back bit for bit
  j["kl"] = w.kl;
  return j.dump() + "\n";
}

PplLog read_ppl_log(const std::string& path, const nlohmann::json& header) {
  PplLog log;
  if (!std::filesystem::exists(path)) return log;
  const std::string bytes = io::read_file(path);
  const size_t n_schemes = header.at("schemes").size();
  size_t pos = 0, line_no = 0;
  while (pos < bytes.size()) {
    const size_t nl = bytes.find('\n', pos);
    ++line_no;
    if (nl == std::string::npos) break;  // killed mid-write: the partial line is redone
    const std::string where = path + ":" + std::to_string(line_no);
    const nlohmann::json j = nlohmann::json::parse(bytes.substr(pos, nl - pos), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) usage_error("{}: not a JSON object", where);
    if (line_no == 1) {
      if (shown(j) != shown(header))  // as written: a file name that is not UTF-8 is stored with U+FFFD
        usage_error("{} was written by a different ppl run ({}, this run is {}); give this run another --out", path,
                    shown(j), shown(header));
      log.has_header = true;
    } else {
      PplWindowSums w;
      w.window = count_field(j, "window", where);
      w.n_targets = count_field(j, "n_targets", where);
      w.nll = sums_field(j, "nll", n_schemes, where);
      w.kl = sums_field(j, "kl", n_schemes, where);
      if (!log.windows.emplace(w.window, std::move(w)).second) usage_error("{}: window {} is listed twice", where, j["window"].get<size_t>());
    }
    pos = nl + 1;
    log.valid_bytes = pos;
  }
  return log;
}

}  // namespace kvaudit::eval
