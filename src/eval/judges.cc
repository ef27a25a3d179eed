#include "eval/judges.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"

namespace kvaudit::eval {

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

namespace {

// Python's str.strip() on ASCII whitespace.
std::string_view strip(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

struct PhraseList {
  const char* name;
  const char* file;
  MatchRule rule;
};

// refusal_substrings/SOURCE.md gives each list's origin and matching semantics.
constexpr PhraseList kPhraseLists[] = {
    {"substring:paper", "refusal_substrings/paper_family_a.txt", MatchRule::kSubstringIgnoreCase},
    {"substring:jbb", "refusal_substrings/refusal_direction_test_prefixes_jailbreakbench.txt",
     MatchRule::kSubstringIgnoreCase},
    {"substring:gcg", "refusal_substrings/llm-attacks_experiments_evaluate_test_prefixes.txt",
     MatchRule::kSubstringExactCase},
    {"prefix:xstest", "refusal_substrings/xstest_strmatch_startswith_prefixes.txt",
     MatchRule::kPrefixLowerStripped},
};

}  // namespace

JudgeSpec parse_judge_spec(const std::string& spec) {
  JudgeSpec out;
  out.name = spec;
  for (const auto& l : kPhraseLists)
    if (spec == l.name) {
      out.list_file = l.file;
      out.rule = l.rule;
      return out;
    }
  if (spec.rfind("model:", 0) == 0) {
    out.is_model = true;
    std::string path = spec.substr(6);
    const size_t colon = path.rfind(':');
    const std::string suffix = colon == std::string::npos ? "" : path.substr(colon + 1);
    if (suffix == "wildguard" || suffix == "llamaguard3") {
      out.format = suffix == "wildguard" ? GuardFormat::kWildGuard : GuardFormat::kLlamaGuard3;
      path.resize(colon);
    } else {
      const std::string base = ascii_lower(std::filesystem::path(path).filename().string());
      if (base.find("wildguard") != std::string::npos)
        out.format = GuardFormat::kWildGuard;
      else if (base.find("guard-3") != std::string::npos || base.find("guard3") != std::string::npos)
        out.format = GuardFormat::kLlamaGuard3;
      else
        usage_error("--judge '{}': cannot tell the guard model's format from its name; append "
                    ":wildguard or :llamaguard3", spec);
    }
    if (path.empty()) usage_error("--judge '{}': model path is empty", spec);
    out.model_path = path;
    return out;
  }
  usage_error("--judge: unknown judge '{}' (substring:paper, substring:jbb, substring:gcg, "
              "prefix:xstest, model:PATH[:wildguard|:llamaguard3])", spec);
}

PhraseJudge::PhraseJudge(std::string name, std::vector<std::string> phrases, MatchRule rule)
    : name_(std::move(name)), phrases_(std::move(phrases)), rule_(rule) {
  for (const auto& p : phrases_) {
    keys_.push_back(rule_ == MatchRule::kSubstringExactCase ? p : ascii_lower(p));
    longest_key_ = std::max(longest_key_, keys_.back().size());
  }
}

Verdict PhraseJudge::judge(std::string_view response) const {
  const std::string folded =
      rule_ == MatchRule::kSubstringExactCase ? std::string(response) : ascii_lower(response);
  const std::string_view text =
      rule_ == MatchRule::kPrefixLowerStripped ? strip(folded) : std::string_view(folded);
  for (size_t i = 0; i < keys_.size(); ++i) {
    const bool hit = rule_ == MatchRule::kPrefixLowerStripped
                         ? text.substr(0, keys_[i].size()) == keys_[i]
                         : text.find(keys_[i]) != std::string_view::npos;
    if (hit) return {true, phrases_[i]};
  }
  return {false, ""};
}

bool PhraseJudge::decided(std::string_view text) const {
  if (rule_ != MatchRule::kPrefixLowerStripped) return judge(text).refused;
  // strip(text + s) begins with strip(text): left stripping is unchanged once a non-space byte is
  // seen, and right stripping never removes strip(text)'s last byte, which is not a space. So once
  // strip(text) is as long as every phrase, each startswith comparison is fixed. ASCII lower-casing
  // keeps byte lengths, so strip(text) can be measured before folding.
  return strip(text).size() >= longest_key_;
}

PhraseJudge load_phrase_judge(const JudgeSpec& spec, const std::string& data_dir) {
  if (spec.is_model) usage_error("--judge '{}' is a model judge, not a phrase list", spec.name);
  const std::string path = (std::filesystem::path(data_dir) / spec.list_file).string();
  const std::string bytes = io::read_file(path);
  std::vector<std::string> phrases;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find('\n', pos);
    if (end == std::string::npos) end = bytes.size();
    std::string line = bytes.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) phrases.push_back(std::move(line));  // phrases keep inner/edge spaces
  }
  if (phrases.empty()) usage_error("{}: phrase list is empty", path);
  return PhraseJudge(spec.name, std::move(phrases), spec.rule);
}

}  // namespace kvaudit::eval
