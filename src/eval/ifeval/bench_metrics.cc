#include "eval/ifeval/bench_metrics.h"

#include <map>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

namespace kvaudit::eval::ifeval {

const std::vector<Item>& items_for(const std::string& data_dir) {
  static std::mutex mu;
  static std::map<std::string, std::vector<Item>> cache;
  const std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(data_dir);
  if (it == cache.end()) it = cache.emplace(data_dir, load_items(dataset_path(data_dir))).first;
  return it->second;
}

std::vector<Prompt> load_prompts(const std::string& data_dir) {
  std::vector<Prompt> out;
  for (const Item& it : items_for(data_dir)) out.push_back({fmt::format("{}:{}", kBench, it.key), kBench, it.prompt, ""});
  return out;
}

const Item& item_of(const std::string& data_dir, const std::string& prompt_id) {
  static const std::string prefix = std::string(kBench) + ":";
  if (prompt_id.rfind(prefix, 0) == 0) {
    const std::string key = prompt_id.substr(prefix.size());
    for (const Item& it : items_for(data_dir))
      if (std::to_string(it.key) == key) return it;
  }
  throw std::logic_error("ifeval: no IFEval item for prompt id " + prompt_id);
}

std::string verdict_summary(const Verdict& v) {
  size_t s = 0, l = 0;
  for (bool b : v.strict) s += b;
  for (bool b : v.loose) l += b;
  return fmt::format("ifeval strict {}/{} loose {}/{}", s, v.strict.size(), l, v.loose.size());
}

IfevalMetrics ifeval_metrics(const std::vector<Verdict>& baseline, const std::vector<Verdict>& scheme) {
  if (baseline.size() != scheme.size()) throw std::logic_error("ifeval_metrics: verdict lists differ in length");
  Accuracy b, s;
  int64_t flips = 0, reverse = 0;
  for (size_t i = 0; i < scheme.size(); ++i) {
    b.add(baseline[i]);
    s.add(scheme[i]);
    flips += baseline[i].all_strict && !scheme[i].all_strict;
    reverse += !baseline[i].all_strict && scheme[i].all_strict;
  }
  IfevalMetrics m;
  m.prompt_strict = s.prompt_strict_acc();
  m.prompt_loose = s.prompt_loose_acc();
  m.inst_strict = s.inst_strict_acc();
  m.inst_loose = s.inst_loose_acc();
  m.delta_prompt_strict = m.prompt_strict - b.prompt_strict_acc();
  m.delta_prompt_loose = m.prompt_loose - b.prompt_loose_acc();
  m.delta_inst_strict = m.inst_strict - b.inst_strict_acc();
  m.delta_inst_loose = m.inst_loose - b.inst_loose_acc();
  m.flips = flips;
  m.reverse_flips = reverse;
  m.mcnemar_p = scheme.empty() ? kNaN : mcnemar_exact_p(flips, reverse);
  return m;
}

}  // namespace kvaudit::eval::ifeval
