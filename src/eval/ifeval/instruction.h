// One verifiable instruction of IFEval (Zhou et al. 2023): its checker, built once from the
// dataset's kwargs. The checkers follow google-research instruction_following_eval/instructions.py
// (as lm-evaluation-harness ships it); one file per instruction group (change_case.cc, ...).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::eval::ifeval {

// true when the response follows the instruction (the reference's check_following).
using Check = std::function<bool(std::string_view response)>;

// The kwargs dict of one entry; accessors throw UsageError naming `where` and the key when a
// parameter is missing or of the wrong type.
class Kwargs {
 public:
  Kwargs(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {}
  int64_t integer(const char* key) const;
  std::string str(const char* key) const;
  std::vector<std::string> strings(const char* key) const;
  // "less than" -> true, "at least" -> false (the only two relations of the reference).
  bool less_than(const char* key) const;

 private:
  const nlohmann::json& j_;
  std::string where_;
};

// An `at least` / `less than` bound on a count.
inline bool compare(int64_t count, bool less_than, int64_t threshold) {
  return less_than ? count < threshold : count >= threshold;
}

// The checker for instruction id `id` (e.g. "keywords:frequency"). UsageError naming `where` for
// an id the scorer does not know or bad kwargs.
Check make_check(const std::string& id, const nlohmann::json& kwargs, const std::string& where);

// Every id make_check knows, sorted.
std::vector<std::string> instruction_ids();

// Per group (the files of the same name); registry.cc maps ids to them.
Check make_capital_word_frequency(const Kwargs& kw);
Check make_english_capital(const Kwargs& kw);
Check make_english_lowercase(const Kwargs& kw);
Check make_repeat_prompt(const Kwargs& kw);
Check make_two_responses(const Kwargs& kw);
Check make_number_placeholders(const Kwargs& kw);
Check make_postscript(const Kwargs& kw);
Check make_constrained_response(const Kwargs& kw);
Check make_json_format(const Kwargs& kw);
Check make_multiple_sections(const Kwargs& kw);
Check make_number_bullet_lists(const Kwargs& kw);
Check make_number_highlighted_sections(const Kwargs& kw);
Check make_title(const Kwargs& kw);
Check make_keyword_existence(const Kwargs& kw);
Check make_forbidden_words(const Kwargs& kw);
Check make_keyword_frequency(const Kwargs& kw);
Check make_letter_frequency(const Kwargs& kw);
Check make_response_language(const Kwargs& kw);
Check make_nth_paragraph_first_word(const Kwargs& kw);
Check make_number_paragraphs(const Kwargs& kw);
Check make_number_sentences(const Kwargs& kw);
Check make_number_words(const Kwargs& kw);
Check make_no_comma(const Kwargs& kw);
Check make_end_checker(const Kwargs& kw);
Check make_quotation(const Kwargs& kw);

}  // namespace kvaudit::eval::ifeval
