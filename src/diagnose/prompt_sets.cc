#include "diagnose/prompt_sets.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/subset.h"
#include "io/atomic_file.h"

namespace kvaudit::diagnose {

PromptSetSpec parse_prompt_set(const std::string& text, const std::string& flag) {
  PromptSetSpec s{text, 0};
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos && colon + 1 < text.size() &&
      std::all_of(text.begin() + long(colon) + 1, text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    s.bench = text.substr(0, colon);
    s.n = std::stoul(text.substr(colon + 1));
    if (s.n == 0) usage_error("{} '{}': the count must be >= 1", flag, text);
  }
  if (s.bench.empty()) usage_error("{} '{}': no benchmark named", flag, text);
  return s;
}

std::vector<eval::Prompt> calibration_prompts(const PromptSetSpec& s, const std::string& data_dir) {
  std::vector<eval::Prompt> all = eval::load_benchmark(s.bench, data_dir, "", "--calib");
  if (s.n && all.size() > s.n) all.resize(s.n);
  if (all.empty()) usage_error("--calib '{}' holds no prompt", s.bench);
  return all;
}

std::vector<eval::Prompt> heldout_prompts(const PromptSetSpec& s, const std::string& data_dir, uint64_t seed,
                                          const std::vector<eval::Prompt>& calibration) {
  std::set<std::string> seen;
  for (const auto& p : calibration) seen.insert(p.text);
  std::vector<eval::Prompt> pool;
  for (auto& p : eval::load_benchmark(s.bench, data_dir, "", "--heldout"))
    if (!seen.count(p.text)) pool.push_back(std::move(p));
  if (pool.empty()) usage_error("--heldout '{}' holds no prompt outside the calibration set", s.bench);
  std::vector<eval::Prompt> out;
  for (size_t i : eval::seeded_subset(pool.size(), s.n ? s.n : pool.size(), seed)) out.push_back(pool[i]);
  return out;
}

std::vector<std::pair<std::string, std::string>> geometry_pairs(const std::string& data_dir, size_t n) {
  const auto dir = std::filesystem::path(data_dir) / "refusal_direction_splits";
  auto load = [&](const char* name) {
    const std::string path = (dir / name).string();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(io::read_file(path));
    } catch (const nlohmann::json::exception& e) {
      usage_error("geometry prompts '{}': {}", path, e.what());
    }
    std::vector<std::string> out;
    for (const auto& row : j) {
      if (!row.is_object() || !row.contains("instruction") || !row.at("instruction").is_string())
        usage_error("geometry prompts '{}': every row needs a string \"instruction\"", path);
      out.push_back(row.at("instruction").get<std::string>());
    }
    return out;
  };
  const auto harmful = load("harmful_train.json"), harmless = load("harmless_train.json");
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < std::min({n, harmful.size(), harmless.size()}); ++i) pairs.emplace_back(harmful[i], harmless[i]);
  return pairs;
}

}  // namespace kvaudit::diagnose
