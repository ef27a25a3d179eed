#include "eval/ifeval/responses.h"

#include <cmath>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "core/json_number.h"
#include "core/error.h"
#include "eval/ifeval/text_rules.h"
#include "eval/ifeval/jsonl.h"

namespace kvaudit::eval::ifeval {

std::vector<ScoredResponse> read_responses(const std::string& path, const std::vector<Item>& items) {
  std::unordered_map<int64_t, const Item*> by_key;
  std::unordered_map<std::string, const Item*> by_prompt;
  for (const Item& it : items) {
    by_key[it.key] = &it;
    by_prompt[it.prompt] = &it;
  }
  std::vector<ScoredResponse> out;
  std::map<const Item*, size_t> seen;  // item -> line that answered it
  for_each_jsonl(path, [&](const std::string& where, size_t line_no, const nlohmann::json& j) {
    if (!j.is_object()) usage_error("{}: expected an object {{\"key\" or \"prompt\", \"response\"}}", where);
    if (!j.contains("response") || !j["response"].is_string())
      usage_error("{}: no string \"response\"", where);
    const Item* item = nullptr;
    if (j.contains("key")) {
      const auto& k = j["key"];
      int64_t key = 0;
      if (k.is_number_integer())
        key = k.get<int64_t>();
      else if (k.is_string() && !k.get<std::string>().empty() &&
               k.get<std::string>().find_first_not_of("0123456789") == std::string::npos &&
               k.get<std::string>().size() < 18)
        key = std::stoll(k.get<std::string>());
      else
        usage_error("{}: \"key\" is not an integer", where);
      const auto it = by_key.find(key);
      if (it == by_key.end()) usage_error("{}: key {} is not an IFEval prompt", where, key);
      item = it->second;
      // Both given: they must name the same prompt (a file whose keys came from another order
      // would otherwise be scored against other instructions).
      if (j.contains("prompt") && !j["prompt"].is_null() &&
          (!j["prompt"].is_string() || j["prompt"].get<std::string>() != item->prompt))
        usage_error("{}: key {} and \"prompt\" disagree (the prompt is not key {}'s text)", where, key, key);
    } else if (j.contains("prompt")) {
      if (!j["prompt"].is_string()) usage_error("{}: \"prompt\" is not a string", where);
      const auto it = by_prompt.find(j["prompt"].get<std::string>());
      if (it == by_prompt.end())
        usage_error("{}: the prompt is not an IFEval prompt (matched by its exact text)", where);
      item = it->second;
    } else {
      usage_error("{}: neither \"key\" nor \"prompt\" says which IFEval prompt this answers", where);
    }
    const auto [pos, fresh] = seen.emplace(item, line_no);
    if (!fresh) usage_error("{}: key {} was already answered on line {}", where, item->key, pos->second);
    out.push_back({item, j["response"].get<std::string>(), {}});
  });
  if (out.empty()) usage_error("{}: no responses", path);
  return out;
}

void score_all(std::vector<ScoredResponse>& rs) {
#pragma omp parallel for schedule(dynamic, 4)
  for (size_t i = 0; i < rs.size(); ++i) rs[i].verdict = score(*rs[i].item, rs[i].response);
}

nlohmann::json sample_json(const ScoredResponse& r) {
  return {{"key", r.item->key},
          {"prompt", r.item->prompt},
          {"response", r.response},
          {"instruction_id_list", r.item->instruction_ids},
          {"strict", {{"follow_all_instructions", r.verdict.all_strict}, {"follow_instruction_list", r.verdict.strict}}},
          {"loose", {{"follow_all_instructions", r.verdict.all_loose}, {"follow_instruction_list", r.verdict.loose}}}};
}

nlohmann::json accuracy_json(const Accuracy& a) {
  return {{"n", a.prompts},
          {"n_instructions", a.instructions},
          {"ifeval_prompt_strict", number_or_null<nlohmann::json>(a.prompt_strict_acc())},
          {"ifeval_prompt_loose", number_or_null<nlohmann::json>(a.prompt_loose_acc())},
          {"ifeval_inst_strict", number_or_null<nlohmann::json>(a.inst_strict_acc())},
          {"ifeval_inst_loose", number_or_null<nlohmann::json>(a.inst_loose_acc())}};
}

}  // namespace kvaudit::eval::ifeval
