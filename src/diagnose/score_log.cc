#include "diagnose/score_log.h"

#include <cmath>

#include "core/error.h"
#include "model/sha256.h"

namespace kvaudit::diagnose {
namespace {

// A score as the log writes it: the shortest round-trip number, or the one of "inf", "-inf", "nan"
// (a side of the vocabulary can hold all the mass; JSON has no such numbers).
nlohmann::json score_json(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}

double score_of(const nlohmann::json& j, const std::string& where) {
  if (j.is_number()) return j.get<double>();
  if (j == "inf") return INFINITY;
  if (j == "-inf") return -INFINITY;
  if (j == "nan") return NAN;
  usage_error("{}: 'score' must be a number, \"inf\", \"-inf\" or \"nan\"", where);
}

}  // namespace

std::string tokens_digest(const std::vector<int>& ids) {
  std::string s;
  for (int t : ids) s += std::to_string(t) + ",";
  return model::sha256_hex(s).substr(0, 16);
}

ScoreLog::ScoreLog(const std::string& path, const nlohmann::json& header, const std::string& run)
    : log_(eval::read_jsonl_log(path, header, run)) {
  writer_ = std::make_unique<eval::SamplesWriter>(path, log_.valid_bytes);
  if (!log_.has_header) writer_->append_line(eval::jsonl_line(header));
}

ScoreCheckpoint ScoreLog::checkpoint(const std::vector<std::string>& prompt_ids, const std::vector<std::string>& digests,
                                     const std::vector<std::string>& policy_names) {
  std::map<std::string, size_t> prompt_at, policy_at;
  for (size_t i = 0; i < prompt_ids.size(); ++i) prompt_at[prompt_ids[i]] = i;
  for (size_t i = 0; i < policy_names.size(); ++i) policy_at[policy_names[i]] = i;
  ScoreCheckpoint c;
  // Lines of other prompts or policies stay in the file, unused.
  for (const auto& [where, j] : log_.lines) {
    for (const char* key : {"prompt", "tokens", "policy"})
      if (!j.contains(key) || !j[key].is_string()) usage_error("{}: '{}' must be a string", where, key);
    if (!j.contains("score")) usage_error("{}: no 'score'", where);
    const double score = score_of(j["score"], where);
    const auto p = prompt_at.find(j["prompt"].get<std::string>());
    const auto s = policy_at.find(j["policy"].get<std::string>());
    if (p == prompt_at.end() || s == policy_at.end()) continue;
    if (j["tokens"].get<std::string>() != digests[p->second])
      usage_error("{}: prompt {} was scored with other tokens than this run's (another dataset, --system or chat "
                  "template); give this run another --out",
                  where, p->first);
    c.done.emplace(std::pair{s->second, p->second}, score);
  }
  c.on_score = [this, prompt_ids, digests, policy_names](size_t policy, size_t prompt, double score) {
    nlohmann::ordered_json line;
    line["prompt"] = prompt_ids[prompt];
    line["tokens"] = digests[prompt];
    line["policy"] = policy_names[policy];
    line["score"] = score_json(score);
    writer_->append_line(eval::jsonl_line(line));
  };
  return c;
}

}  // namespace kvaudit::diagnose
