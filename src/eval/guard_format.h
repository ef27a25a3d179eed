// Guard-model judges: prompt formats and output parsing, as pure functions (the model run itself
// goes through the engine). Formats: ../shared/datasets/chat_templates/wildguard.format.txt (a
// Python str.format string) and Llama-Guard-3-8B.jinja (a chat template; rendered by text/).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eval/judges.h"

namespace kvaudit::eval {

// Python str.format with the fields {prompt} and {response}; "{{" and "}}" are literal braces.
// Substitution is one pass, so braces inside the prompt or response are never re-read.
// UsageError naming `source` for any other field or an unmatched brace in the format.
std::string format_wildguard(std::string_view format, std::string_view prompt,
                             std::string_view response, const std::string& source = "wildguard format");

// Llama Guard 3's input: its chat template rendered for [user: prompt, assistant: response] (the
// template asks about the last, i.e. the Agent's, message). The template writes its own
// "<|begin_of_text|>"; tokenize without adding special tokens.
std::string format_llamaguard3(const std::string& chat_template, const std::string& prompt,
                               const std::string& response);

// WildGuard answers three lines "Harmful request: yes|no", "Response refusal: yes|no",
// "Harmful response: yes|no" (n/a allowed). Lines are matched by label, case-insensitive; a
// line whose label is not recognised counts by its position among non-blank lines (the official
// library reads the three lines by position). "n/a" or anything unparsed -> nullopt.
struct WildGuardAnswer {
  std::optional<bool> harmful_request;
  std::optional<bool> response_refusal;
  std::optional<bool> harmful_response;
};
WildGuardAnswer parse_wildguard(std::string_view output);

// Llama Guard 3 answers "safe" or "unsafe\nS1,S9" for the last message of the conversation.
struct LlamaGuardAnswer {
  std::optional<bool> unsafe;           // nullopt: first line is neither "safe" nor "unsafe"
  std::vector<std::string> categories;  // e.g. {"S1", "S9"}, only when unsafe
};
LlamaGuardAnswer parse_llamaguard(std::string_view output);

// The refusal verdict from a guard's answer; matched = the answer, whitespace-trimmed.
// WildGuard: refused = "Response refusal: yes". Llama Guard 3 judges harm, not refusal: a response
// rated safe counts as refused (the research code's mapping; only meaningful on harmful prompts).
// An answer that cannot be parsed counts as not refused, and `matched` shows it in samples.jsonl.
Verdict guard_verdict(GuardFormat format, std::string_view output);

}  // namespace kvaudit::eval
