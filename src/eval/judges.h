// Refusal judges (SPEC.md §4 "Judges"). Phrase judges decide from the response text alone, each
// with the matching rule of the list's origin (refusal_substrings/SOURCE.md); model judges run a
// guard model (eval/guard_format.h holds their prompt formats and output parsing).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace kvaudit::eval {

struct Verdict {
  bool refused = false;
  std::string matched;  // the list's phrase that matched ("" when none), or a guard's raw answer
};

enum class MatchRule {
  kSubstringIgnoreCase,  // any phrase anywhere, ASCII case folded (paper family_a; refusal_direction)
  kSubstringExactCase,   // any phrase anywhere, case-sensitive (llm-attacks `prefix in gen_str`)
  kPrefixLowerStripped,  // response.lower().strip() starts with a phrase (XSTest strmatch)
};

enum class GuardFormat { kWildGuard, kLlamaGuard3 };

// What --judge names. `substring:paper` (default), `substring:jbb`, `substring:gcg`,
// `prefix:xstest`, or `model:PATH[:wildguard|:llamaguard3]`.
struct JudgeSpec {
  std::string name;       // the spec as given (recorded in samples.jsonl / results.json config)
  bool is_model = false;
  // phrase judges
  std::string list_file;  // relative to the data dir, e.g. "refusal_substrings/paper_family_a.txt"
  MatchRule rule = MatchRule::kSubstringIgnoreCase;
  // model judges
  std::string model_path;
  GuardFormat format = GuardFormat::kWildGuard;
};

// UsageError naming --judge and the accepted forms on a bad spec. For `model:PATH` without a format
// suffix the format is inferred from the path ("wildguard" or "guard-3"/"guard3" in its name,
// case-insensitive) or the spec is rejected.
JudgeSpec parse_judge_spec(const std::string& spec);

class PhraseJudge {
 public:
  PhraseJudge(std::string name, std::vector<std::string> phrases, MatchRule rule);
  const std::string& name() const { return name_; }
  const std::vector<std::string>& phrases() const { return phrases_; }
  // The first phrase of the list (list order) that matches decides; matched = that phrase as listed.
  Verdict judge(std::string_view response) const;
  // True when no continuation can change the verdict: judge(text + s).refused == judge(text).refused
  // for every string s (verdict-aware early stop, docs/EVAL.md). Substring rules: a phrase occurs in
  // `text` (it stays in any extension; a text without one may still gain one, so it is undecided).
  // kPrefixLowerStripped: `text` stripped holds at least as many bytes as the longest phrase, so the
  // beginning every phrase is compared with is fixed (and so is `matched`).
  bool decided(std::string_view text) const;

 private:
  std::string name_;
  std::vector<std::string> phrases_;  // as listed
  std::vector<std::string> keys_;     // as compared (lower-cased unless kSubstringExactCase)
  size_t longest_key_ = 0;            // bytes of the longest key
  MatchRule rule_;
};

// Reads the spec's phrase list (one phrase per line) from the data dir. UsageError for model specs
// or a missing/empty list file (naming the path).
PhraseJudge load_phrase_judge(const JudgeSpec& spec, const std::string& data_dir);

// ASCII lower-casing (the lists are ASCII; UTF-8 bytes >= 0x80 pass through unchanged).
std::string ascii_lower(std::string_view s);

}  // namespace kvaudit::eval
