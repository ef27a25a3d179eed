#include <algorithm>
#include <map>

#include "core/error.h"
#include "eval/ifeval/instruction.h"

namespace kvaudit::eval::ifeval {
namespace {

using Factory = Check (*)(const Kwargs&);

const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> r = {
      {"change_case:capital_word_frequency", make_capital_word_frequency},
      {"change_case:english_capital", make_english_capital},
      {"change_case:english_lowercase", make_english_lowercase},
      {"combination:repeat_prompt", make_repeat_prompt},
      {"combination:two_responses", make_two_responses},
      {"detectable_content:number_placeholders", make_number_placeholders},
      {"detectable_content:postscript", make_postscript},
      {"detectable_format:constrained_response", make_constrained_response},
      {"detectable_format:json_format", make_json_format},
      {"detectable_format:multiple_sections", make_multiple_sections},
      {"detectable_format:number_bullet_lists", make_number_bullet_lists},
      {"detectable_format:number_highlighted_sections", make_number_highlighted_sections},
      {"detectable_format:title", make_title},
      {"keywords:existence", make_keyword_existence},
      {"keywords:forbidden_words", make_forbidden_words},
      {"keywords:frequency", make_keyword_frequency},
      {"keywords:letter_frequency", make_letter_frequency},
      {"language:response_language", make_response_language},
      {"length_constraints:nth_paragraph_first_word", make_nth_paragraph_first_word},
      {"length_constraints:number_paragraphs", make_number_paragraphs},
      {"length_constraints:number_sentences", make_number_sentences},
      {"length_constraints:number_words", make_number_words},
      {"punctuation:no_comma", make_no_comma},
      {"startend:end_checker", make_end_checker},
      {"startend:quotation", make_quotation},
  };
  return r;
}

const nlohmann::json& member(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) usage_error("{}: kwargs has no '{}'", where, key);
  return j.at(key);
}

}  // namespace

int64_t Kwargs::integer(const char* key) const {
  const auto& v = member(j_, key, where_);
  if (!v.is_number_integer()) usage_error("{}: kwargs '{}' is not an integer", where_, key);
  return v.get<int64_t>();
}

std::string Kwargs::str(const char* key) const {
  const auto& v = member(j_, key, where_);
  if (!v.is_string()) usage_error("{}: kwargs '{}' is not a string", where_, key);
  return v.get<std::string>();
}

std::vector<std::string> Kwargs::strings(const char* key) const {
  const auto& v = member(j_, key, where_);
  if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_string(); }))
    usage_error("{}: kwargs '{}' is not a list of strings", where_, key);
  return v.get<std::vector<std::string>>();
}

bool Kwargs::less_than(const char* key) const {
  const std::string r = str(key);
  if (r != "less than" && r != "at least")
    usage_error("{}: kwargs '{}' is '{}', not 'less than' or 'at least'", where_, key, r);
  return r == "less than";
}

Check make_check(const std::string& id, const nlohmann::json& kwargs, const std::string& where) {
  const auto it = registry().find(id);
  if (it == registry().end()) usage_error("{}: unknown IFEval instruction id '{}'", where, id);
  return it->second(Kwargs(kwargs, where + " (" + id + ")"));
}

std::vector<std::string> instruction_ids() {
  std::vector<std::string> ids;
  for (const auto& [id, f] : registry()) ids.push_back(id);
  return ids;
}

}  // namespace kvaudit::eval::ifeval
