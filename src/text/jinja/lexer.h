// Jinja lexer with the environment transformers uses (trim_blocks=True, lstrip_blocks=True):
// text, {{ }}, {% %}, {# #}, '-'/'+' whitespace control, {% raw %} (SPEC.md §2).
#pragma once
#include <string>
#include <vector>

namespace kvaudit::text::jinja {

enum class Tok { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kInt, kFloat, kString, kOp, kEof };

struct Token {
  Tok kind;
  std::string text;  // text, name, operator, or the decoded string literal / number spelling
  int line;
};

// Throws UsageError "chat template line N: ..." on unterminated tags or bad characters.
std::vector<Token> lex(const std::string& src);

}  // namespace kvaudit::text::jinja
