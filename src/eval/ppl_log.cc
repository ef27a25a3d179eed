#include "eval/ppl_log.h"

#include <algorithm>

#include "core/error.h"
#include "eval/jsonl_log.h"
#include "eval/perplexity.h"
#include "eval/samples.h"
#include "model/sha256.h"

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

nlohmann::json ppl_log_header(const std::string& model, const std::string& text, const std::vector<int>& tokens,
                              const PplOptions& opt, const std::vector<SchemeRun>& schemes, engine::Device device) {
  std::vector<std::string> names;
  for (const auto& s : schemes) names.push_back(s.name);
  model::Sha256 h;
  for (const int t : tokens) {
    const auto u = uint32_t(t);
    const uint8_t le[4] = {uint8_t(u), uint8_t(u >> 8), uint8_t(u >> 16), uint8_t(u >> 24)};
    h.update(le, 4);
  }
  return {{"model", model},   {"text", text},   {"n_tokens", tokens.size()}, {"tokens_sha256", h.hex_digest()},
          {"window", opt.window}, {"stride", opt.stride}, {"score_from", opt.score_from}, {"schemes", names},
          {"device", engine::device_name(device)}};
}

size_t ppl_window_count(size_t n_tokens, const PplOptions& opt) {
  const size_t n = ppl_windows(n_tokens, opt.window, opt.stride).size();
  return opt.max_windows ? std::min(n, opt.max_windows) : n;
}

void require_ppl_windows(size_t n_tokens, const PplOptions& opt, const std::string& path) {
  if (ppl_window_count(n_tokens, opt) == 0)
    usage_error("--text {}: {} token{} (special tokens included): perplexity needs at least 2", path, n_tokens,
                n_tokens == 1 ? "" : "s");
}

std::vector<PplResult> run_perplexity_logged(engine::Backend& backend, const std::vector<int>& tokens,
                                             const std::vector<SchemeRun>& schemes, const PplOptions& opt,
                                             Progress* progress, const std::string& path,
                                             const nlohmann::json& header, bool replace_other_run) {
  PplLog log;  // empty: the writer below truncates the file to nothing
  if (!replace_other_run || jsonl_log_is_for(path, header)) log = read_ppl_log(path, header);
  SamplesWriter writer(path, log.valid_bytes);
  if (!log.has_header) writer.append_line(ppl_log_header_line(header));
  const PplCheckpoint checkpoint{std::move(log.windows),
                                 [&writer](const PplWindowSums& w) { writer.append_line(ppl_window_line(w)); }};
  return run_perplexity(backend, tokens, schemes, opt, progress, &checkpoint);
}

}  // namespace kvaudit::eval
