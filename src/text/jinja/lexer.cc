#include "text/jinja/lexer.h"

#include <cctype>

#include "core/error.h"
#include "text/utf8.h"

namespace kvaudit::text::jinja {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

class Lexer {
 public:
  explicit Lexer(const std::string& s) : s_(s) {}

  std::vector<Token> run() {
    size_t pos = 0;
    bool strip_next = false;  // previous tag ended with '-'
    bool trim_next = false;   // previous tag was a block/comment (trim_blocks)
    while (pos < s_.size()) {
      const size_t open = find_open(pos);
      std::string text = s_.substr(pos, open - pos);
      const size_t text_start = pos;
      if (strip_next) {
        size_t k = 0;
        while (k < text.size() && is_ws(text[k])) ++k;
        text.erase(0, k);
      } else if (trim_next) {
        if (text.rfind("\r\n", 0) == 0) text.erase(0, 2);
        else if (!text.empty() && text[0] == '\n') text.erase(0, 1);
      }
      if (open == s_.size()) {
        emit_text(text, text_start);
        break;
      }
      const char kind = s_[open + 1];  // '{', '%' or '#'
      const char ctl = open + 2 < s_.size() ? s_[open + 2] : '\0';
      if (ctl == '-') {
        while (!text.empty() && is_ws(text.back())) text.pop_back();
      } else if (ctl != '+' && (kind == '%' || kind == '#')) {
        lstrip_block(text, text_start);
      }
      emit_text(text, text_start);
      pos = open + 2 + (ctl == '-' || ctl == '+');
      const int tag_line = line_at(open);
      if (kind == '#') {
        const size_t close = s_.find("#}", pos);
        if (close == std::string::npos) fail(tag_line, "unterminated comment");
        strip_next = close > pos && s_[close - 1] == '-';
        trim_next = true;
        pos = close + 2;
        continue;
      }
      const std::string end = kind == '{' ? "}}" : "%}";
      out_.push_back({kind == '{' ? Tok::kVarBegin : Tok::kBlockBegin, "", tag_line});
      const size_t first_tok = out_.size();
      pos = lex_expr(pos, end, tag_line);  // at the end marker
      strip_next = s_[pos - 1] == '-';
      const bool plus_end = s_[pos - 1] == '+';
      out_.push_back({kind == '{' ? Tok::kVarEnd : Tok::kBlockEnd, "", line_at(pos)});
      pos += end.size();
      trim_next = kind == '%' && !plus_end;
      if (kind == '%' && out_.size() > first_tok && out_[first_tok].text == "raw" &&
          out_[first_tok].kind == Tok::kName)
        pos = lex_raw(pos, strip_next, trim_next, tag_line), strip_next = false, trim_next = true;
    }
    out_.push_back({Tok::kEof, "", line_at(s_.size())});
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(int line, const std::string& msg) { usage_error("chat template line {}: {}", line, msg); }

  int line_at(size_t pos) {
    while (line_pos_ < pos && line_pos_ < s_.size()) line_ += s_[line_pos_++] == '\n';
    while (line_pos_ > pos) line_ -= s_[--line_pos_] == '\n';
    return line_;
  }

  size_t find_open(size_t pos) const {
    for (size_t p = s_.find('{', pos); p != std::string::npos; p = s_.find('{', p + 1))
      if (p + 1 < s_.size() && (s_[p + 1] == '{' || s_[p + 1] == '%' || s_[p + 1] == '#')) return p;
    return s_.size();
  }

  // lstrip_blocks: drop spaces/tabs between the start of the line and a block tag.
  void lstrip_block(std::string& text, size_t text_start) {
    size_t k = text.size();
    while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\t')) --k;
    const bool line_start = k > 0 ? text[k - 1] == '\n' : (text_start + text.size() == 0 || at_line_start(text_start));
    if (line_start) text.erase(k);
  }
  bool at_line_start(size_t text_start) const {
    // Text with no newline: the line starts before it only if the template starts there.
    return text_start == 0 || s_[text_start - 1] == '\n';
  }

  void emit_text(const std::string& text, size_t at) {
    if (!text.empty()) out_.push_back({Tok::kText, text, line_at(at)});
  }

  // Tokens of one tag up to its end marker; returns the position of the end marker (before '-').
  size_t lex_expr(size_t pos, const std::string& end, int tag_line) {
    while (true) {
      while (pos < s_.size() && is_ws(s_[pos])) ++pos;
      if (pos >= s_.size()) fail(tag_line, "unterminated tag (missing '" + end + "')");
      if (s_.compare(pos, end.size(), end) == 0) return pos;
      if ((s_[pos] == '-' || s_[pos] == '+') && s_.compare(pos + 1, end.size(), end) == 0) return pos + 1;
      const int line = line_at(pos);
      const char c = s_[pos];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = pos;
        while (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
        out_.push_back({Tok::kName, s_.substr(pos, e - pos), line});
        pos = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t e = pos;
        while (e < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
        bool is_float = false;
        if (e + 1 < s_.size() && s_[e] == '.' && std::isdigit(static_cast<unsigned char>(s_[e + 1]))) {
          is_float = true;
          ++e;
          while (e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]))) ++e;
        }
        out_.push_back({is_float ? Tok::kFloat : Tok::kInt, s_.substr(pos, e - pos), line});
        pos = e;
      } else if (c == '\'' || c == '"') {
        pos = lex_string(pos, line);
      } else {
        static const char* const ops[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                          "=", "(", ")", "[", "]", "{", "}", ".", ",", ":", "|"};
        bool ok = false;
        for (const char* op : ops) {
          const size_t n = std::char_traits<char>::length(op);
          if (s_.compare(pos, n, op) == 0) {
            out_.push_back({Tok::kOp, op, line});
            pos += n;
            ok = true;
            break;
          }
        }
        if (!ok) fail(line, std::string("unexpected character '") + c + "'");
      }
    }
  }

  size_t lex_string(size_t pos, int line) {
    const char q = s_[pos++];
    std::string v;
    while (pos < s_.size() && s_[pos] != q) {
      char c = s_[pos++];
      if (c != '\\') {
        v += c;
        continue;
      }
      if (pos >= s_.size()) break;
      const char e = s_[pos++];
      switch (e) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case '\\': v += '\\'; break;
        case '\'': v += '\''; break;
        case '"': v += '"'; break;
        case 'u':
        case 'x': {
          const size_t n = e == 'u' ? 4 : 2;
          if (pos + n > s_.size()) fail(line, "truncated escape in string literal");
          char32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            const char h = s_[pos + k];
            const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) fail(line, fmt::format("bad \\{} escape in string literal", e));
            cp = cp * 16 + static_cast<char32_t>(d);
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // a lone surrogate cannot be UTF-8
          utf8_append(v, cp);
          pos += n;
          break;
        }
        default: v += '\\', v += e;  // Python keeps unknown escapes
      }
    }
    if (pos >= s_.size()) fail(line, "unterminated string literal");
    out_.push_back({Tok::kString, v, line});
    return pos + 1;
  }

  // {% raw %}...{% endraw %}: the body is text, verbatim.
  size_t lex_raw(size_t pos, bool strip, bool trim, int tag_line) {
    for (size_t p = s_.find("{%", pos); p != std::string::npos; p = s_.find("{%", p + 2)) {
      size_t q = p + 2;
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) ++q;
      while (q < s_.size() && is_ws(s_[q])) ++q;
      if (s_.compare(q, 6, "endraw") != 0) continue;
      const size_t close = s_.find("%}", q);
      if (close == std::string::npos) break;
      out_.pop_back();  // the raw tag's tokens
      out_.pop_back();
      out_.pop_back();
      std::string body = s_.substr(pos, p - pos);
      if (strip) {
        size_t k = 0;
        while (k < body.size() && is_ws(body[k])) ++k;
        body.erase(0, k);
      } else if (trim && !body.empty() && body[0] == '\n') {
        body.erase(0, 1);
      }
      if (s_[p + 2] == '-')
        while (!body.empty() && is_ws(body.back())) body.pop_back();
      emit_text(body, pos);
      return close + 2;
    }
    fail(tag_line, "{% raw %} without {% endraw %}");
  }

  const std::string& s_;
  std::vector<Token> out_;
  size_t line_pos_ = 0;
  int line_ = 1;
};

}  // namespace

std::vector<Token> lex(const std::string& src) { return Lexer(src).run(); }

}  // namespace kvaudit::text::jinja
