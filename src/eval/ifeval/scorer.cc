#include "eval/ifeval/scorer.h"

#include <algorithm>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/ifeval/text_rules.h"
#include "eval/ifeval/jsonl.h"
#include "text/utf8.h"

namespace kvaudit::eval::ifeval {

std::string dataset_path(const std::string& data_dir) { return data_dir + "/ifeval/input_data.jsonl"; }

std::vector<Item> load_items(const std::string& path) {
  std::vector<Item> items;
  std::set<int64_t> keys;
  std::set<std::string> prompts;
  for_each_jsonl(path, [&](const std::string& where, size_t, const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("key") || !j["key"].is_number_integer() || !j.contains("prompt") ||
        !j["prompt"].is_string() || !j.contains("instruction_id_list") || !j["instruction_id_list"].is_array() ||
        !j.contains("kwargs") || !j["kwargs"].is_array() || j["kwargs"].size() != j["instruction_id_list"].size())
      usage_error("{}: expected {{key: int, prompt: str, instruction_id_list: [...], kwargs: [...] of the same length}}",
                  where);
    Item it;
    it.key = j["key"].get<int64_t>();
    it.prompt = j["prompt"].get<std::string>();
    if (!keys.insert(it.key).second) usage_error("{}: key {} appears twice", where, it.key);
    if (!prompts.insert(it.prompt).second) usage_error("{}: prompt of key {} appears twice", where, it.key);
    for (size_t i = 0; i < j["instruction_id_list"].size(); ++i) {
      const auto& id = j["instruction_id_list"][i];
      if (!id.is_string()) usage_error("{}: instruction_id_list[{}] is not a string", where, i);
      it.instruction_ids.push_back(id.get<std::string>());
      it.checks.push_back(make_check(it.instruction_ids.back(), j["kwargs"][i], where));
    }
    items.push_back(std::move(it));
  });
  if (items.empty()) usage_error("{}: no IFEval prompts", path);
  return items;
}

namespace {

std::string without_stars(std::string_view s) {
  std::string out(s);
  std::erase(out, '*');
  return out;
}

// The 8 responses the loose score tries (lm-evaluation-harness ifeval/utils.py order).
std::vector<std::string> loose_variants(const std::string& r) {
  std::vector<std::string_view> lines;
  for (size_t b = 0;;) {
    const size_t e = r.find('\n', b);
    lines.push_back(std::string_view(r).substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  auto join = [&](size_t from, size_t to) {  // lines[from, to), "\n"-joined, stripped
    std::string s;
    for (size_t i = from; i < to; ++i) {
      if (i > from) s += '\n';
      s += lines[i];
    }
    return std::string(py_strip(s));
  };
  const size_t n = lines.size();
  const std::string first = join(1, n), last = join(0, n - 1), both = n >= 2 ? join(1, n - 1) : std::string();
  return {r, without_stars(r), first, last, both, without_stars(first), without_stars(last), without_stars(both)};
}

bool passes(const Check& c, std::string_view r) { return !py_strip(r).empty() && c(r); }

}  // namespace

Verdict score(const Item& item, std::string_view raw) {
  const std::string response = text::utf8_sanitize(raw);
  const auto variants = loose_variants(response);
  Verdict v;
  for (const Check& c : item.checks) {
    v.strict.push_back(passes(c, response));
    v.loose.push_back(v.strict.back() ||
                      std::any_of(variants.begin() + 1, variants.end(), [&](const std::string& s) { return passes(c, s); }));
  }
  v.all_strict = std::all_of(v.strict.begin(), v.strict.end(), [](bool b) { return b; });
  v.all_loose = std::all_of(v.loose.begin(), v.loose.end(), [](bool b) { return b; });
  return v;
}

namespace {
double frac(size_t k, size_t n) { return n ? static_cast<double>(k) / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN(); }
}  // namespace

double Accuracy::prompt_strict_acc() const { return frac(prompt_strict, prompts); }
double Accuracy::prompt_loose_acc() const { return frac(prompt_loose, prompts); }
double Accuracy::inst_strict_acc() const { return frac(inst_strict, instructions); }
double Accuracy::inst_loose_acc() const { return frac(inst_loose, instructions); }

void Accuracy::add(const Verdict& v) {
  ++prompts;
  instructions += v.strict.size();
  prompt_strict += v.all_strict;
  prompt_loose += v.all_loose;
  inst_strict += static_cast<size_t>(std::count(v.strict.begin(), v.strict.end(), true));
  inst_loose += static_cast<size_t>(std::count(v.loose.begin(), v.loose.end(), true));
}

}  // namespace kvaudit::eval::ifeval
