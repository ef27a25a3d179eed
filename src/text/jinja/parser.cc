#include "text/jinja/parser.h"

#include <charconv>

#include "core/error.h"
#include "text/jinja/lexer.h"

namespace kvaudit::text::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> t) : t_(std::move(t)) {}

  Body parse_all() {
    std::string end;
    Body b = parse_body({}, &end);
    return b;
  }

 private:
  [[noreturn]] void fail(int line, const std::string& msg) { usage_error("chat template line {}: {}", line, msg); }
  const Token& peek(size_t k = 0) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(p_++, t_.size() - 1)]; }
  bool is_op(const char* op, size_t k = 0) const { return peek(k).kind == Tok::kOp && peek(k).text == op; }
  bool is_name(const char* n, size_t k = 0) const { return peek(k).kind == Tok::kName && peek(k).text == n; }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(peek().line, fmt::format("expected '{}', found '{}'", op, describe(peek())));
    ++p_;
  }
  std::string expect_name() {
    if (peek().kind != Tok::kName) fail(peek().line, fmt::format("expected a name, found '{}'", describe(peek())));
    return next().text;
  }
  void expect_block_end() {
    if (peek().kind != Tok::kBlockEnd) fail(peek().line, fmt::format("expected '%}}', found '{}'", describe(peek())));
    ++p_;
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Tok::kBlockEnd: return "%}";
      case Tok::kVarEnd: return "}}";
      case Tok::kEof: return "end of template";
      default: return t.text;
    }
  }

  // Parses statements until a block tag whose keyword is in `ends`; stores it in *end.
  Body parse_body(const std::vector<std::string>& ends, std::string* end) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.kind == Tok::kEof) {
        if (!ends.empty()) fail(t.line, fmt::format("missing '{{% {} %}}'", ends.front()));
        return body;
      }
      if (t.kind == Tok::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->line = t.line;
        s->text = t.text;
        body.push_back(std::move(s));
        ++p_;
      } else if (t.kind == Tok::kVarBegin) {
        ++p_;
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->line = t.line;
        s->expr = parse_expr();
        if (peek().kind != Tok::kVarEnd) fail(peek().line, fmt::format("expected '}}}}', found '{}'", describe(peek())));
        ++p_;
        body.push_back(std::move(s));
      } else if (t.kind == Tok::kBlockBegin) {
        const Token& kw = peek(1);
        if (kw.kind != Tok::kName) fail(kw.line, "expected a statement keyword after '{%'");
        for (const auto& e : ends)
          if (kw.text == e) {
            p_ += 2;
            *end = e;
            return body;
          }
        p_ += 2;
        body.push_back(parse_statement(kw));
      } else {
        fail(t.line, fmt::format("unexpected '{}'", describe(t)));
      }
    }
  }

  std::unique_ptr<Stmt> parse_statement(const Token& kw) {
    auto s = std::make_unique<Stmt>();
    s->line = kw.line;
    const std::string& k = kw.text;
    if (k == "if") {
      s->kind = Stmt::Kind::kIf;
      ExprPtr cond = parse_expr();
      expect_block_end();
      while (true) {
        std::string end;
        Body b = parse_body({"elif", "else", "endif"}, &end);
        s->branches.emplace_back(std::move(cond), std::move(b));
        if (end == "elif") {
          cond = parse_expr();
          expect_block_end();
          continue;
        }
        if (end == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"}, &end);
        }
        expect_block_end();
        return s;
      }
    }
    if (k == "for") {
      s->kind = Stmt::Kind::kFor;
      s->targets.push_back(expect_name());
      while (is_op(",")) {
        ++p_;
        s->targets.push_back(expect_name());
      }
      if (!is_name("in")) fail(peek().line, "expected 'in' in for loop");
      ++p_;
      s->expr = parse_ternary(/*allow_cond=*/false);
      if (is_name("if")) {
        ++p_;
        s->filter = parse_or();
      }
      if (is_name("recursive")) fail(peek().line, "unsupported: recursive for loops");
      expect_block_end();
      std::string end;
      s->body = parse_body({"else", "endfor"}, &end);
      if (end == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"}, &end);
      }
      expect_block_end();
      return s;
    }
    if (k == "set") {
      const std::string first = expect_name();
      if (is_op(".")) {  // namespace attribute
        ++p_;
        s->kind = Stmt::Kind::kSet;
        auto obj = std::make_unique<Expr>();
        obj->kind = Expr::Kind::kName;
        obj->name = first;
        obj->line = kw.line;
        s->target_obj = std::move(obj);
        s->text = expect_name();
      } else {
        s->targets.push_back(first);
        while (is_op(",")) {
          ++p_;
          s->targets.push_back(expect_name());
        }
      }
      if (peek().kind == Tok::kBlockEnd && !s->target_obj && s->targets.size() == 1) {
        ++p_;
        s->kind = Stmt::Kind::kSetBlock;
        s->text = first;
        std::string end;
        s->body = parse_body({"endset"}, &end);
        expect_block_end();
        return s;
      }
      s->kind = Stmt::Kind::kSet;
      expect_op("=");
      s->expr = parse_tuple_or_expr();
      expect_block_end();
      return s;
    }
    if (k == "break" || k == "continue") {
      s->kind = k == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      expect_block_end();
      return s;
    }
    if (k == "macro") {
      s->kind = Stmt::Kind::kMacro;
      s->text = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        s->targets.push_back(expect_name());
        if (is_op("=")) {
          ++p_;
          s->defaults.push_back(parse_expr());
        } else {
          s->defaults.push_back(nullptr);
        }
        if (!is_op(")")) expect_op(",");
      }
      ++p_;
      expect_block_end();
      std::string end;
      s->body = parse_body({"endmacro"}, &end);
      if (peek().kind == Tok::kName) ++p_;  // {% endmacro name %}
      expect_block_end();
      return s;
    }
    fail(kw.line, fmt::format("unsupported statement '{{% {} %}}'", k));
  }

  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // `a, b` without brackets (set targets' values) -> tuple.
  ExprPtr parse_tuple_or_expr() {
    ExprPtr first = parse_expr();
    if (!is_op(",")) return first;
    auto t = make(Expr::Kind::kTuple, first->line);
    t->items.push_back(std::move(first));
    while (is_op(",")) {
      ++p_;
      t->items.push_back(parse_expr());
    }
    return t;
  }

  ExprPtr parse_expr() { return parse_ternary(true); }

  ExprPtr parse_ternary(bool allow_cond) {
    ExprPtr e = parse_or();
    while (allow_cond && is_name("if")) {
      const int line = next().line;
      auto t = make(Expr::Kind::kTernary, line);
      t->b = std::move(e);
      t->a = parse_or();
      if (is_name("else")) {
        ++p_;
        t->c = parse_ternary(true);
      }
      e = std::move(t);
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      auto n = make(Expr::Kind::kOr, next().line);
      n->a = std::move(e);
      n->b = parse_and();
      e = std::move(n);
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      auto n = make(Expr::Kind::kAnd, next().line);
      n->a = std::move(e);
      n->b = parse_not();
      e = std::move(n);
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      auto n = make(Expr::Kind::kNot, next().line);
      n->a = parse_not();
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    while (true) {
      std::string op;
      if (peek().kind == Tok::kOp &&
          (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == ">" ||
           peek().text == "<=" || peek().text == ">="))
        op = next().text;
      else if (is_name("in"))
        op = next().text;
      else if (is_name("not") && is_name("in", 1))
        p_ += 2, op = "not in";
      else
        return e;
      auto n = make(Expr::Kind::kBinary, peek().line);
      n->name = op;
      n->a = std::move(e);
      n->b = parse_math1();
      e = std::move(n);
    }
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      auto n = make(Expr::Kind::kBinary, peek().line);
      n->name = next().text;
      n->a = std::move(e);
      n->b = parse_concat();
      e = std::move(n);
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      auto n = make(Expr::Kind::kBinary, next().line);
      n->name = "~";
      n->a = std::move(e);
      n->b = parse_math2();
      e = std::move(n);
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      auto n = make(Expr::Kind::kBinary, peek().line);
      n->name = next().text;
      n->a = std::move(e);
      n->b = parse_pow();
      e = std::move(n);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary();
    while (is_op("**")) {
      auto n = make(Expr::Kind::kBinary, next().line);
      n->name = "**";
      n->a = std::move(e);
      n->b = parse_unary();
      e = std::move(n);
    }
    return e;
  }

  ExprPtr parse_unary() {
    if (is_op("-") || is_op("+")) {
      auto n = make(Expr::Kind::kUnary, peek().line);
      n->name = next().text;
      n->a = parse_unary();
      return n;
    }
    ExprPtr e = parse_primary();
    e = parse_postfix(std::move(e));
    return parse_filters_and_tests(std::move(e));
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().kind == Tok::kName && is_op("=", 1)) {
        std::string k = next().text;
        ++p_;
        e.kwargs.emplace_back(std::move(k), parse_expr());
      } else {
        e.items.push_back(parse_expr());
      }
      if (!is_op(")")) expect_op(",");
    }
    ++p_;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const int line = next().line;
        auto n = make(Expr::Kind::kGetAttr, line);
        if (peek().kind == Tok::kInt) n->name = next().text;
        else n->name = expect_name();
        n->a = std::move(e);
        e = std::move(n);
      } else if (is_op("[")) {
        const int line = next().line;
        ExprPtr lo, hi, step;
        bool slice = false;
        if (!is_op(":")) lo = parse_expr();
        if (is_op(":")) {
          slice = true;
          ++p_;
          if (!is_op(":") && !is_op("]")) hi = parse_expr();
          if (is_op(":")) {
            ++p_;
            if (!is_op("]")) step = parse_expr();
          }
        }
        expect_op("]");
        auto n = make(slice ? Expr::Kind::kSlice : Expr::Kind::kGetItem, line);
        n->a = std::move(e);
        n->b = std::move(lo);
        n->c = std::move(hi);
        n->slice_step = std::move(step);
        e = std::move(n);
      } else if (is_op("(")) {
        auto n = make(Expr::Kind::kCall, peek().line);
        n->a = std::move(e);
        parse_call_args(*n);
        e = std::move(n);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filters_and_tests(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        const int line = next().line;
        auto n = make(Expr::Kind::kFilter, line);
        n->name = expect_name();
        n->a = std::move(e);
        if (is_op("(")) parse_call_args(*n);
        e = parse_postfix(std::move(n));
      } else if (is_name("is")) {
        const int line = next().line;
        auto n = make(Expr::Kind::kTest, line);
        if (is_name("not")) {
          ++p_;
          n->negated = true;
        }
        n->name = expect_name();
        n->a = std::move(e);
        if (is_op("(")) {
          parse_call_args(*n);
        } else if (peek().kind == Tok::kString || peek().kind == Tok::kInt || peek().kind == Tok::kFloat ||
                   (peek().kind == Tok::kName && !is_name("and") && !is_name("or") && !is_name("else") &&
                    !is_name("if") && !is_name("is") && !is_name("in") && !is_name("not"))) {
          n->items.push_back(parse_primary());  // "is equalto x", "is sameas none"
        }
        e = std::move(n);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    if (t.kind == Tok::kString) {
      auto n = make(Expr::Kind::kLiteral, t.line);
      std::string s = next().text;
      while (peek().kind == Tok::kString) s += next().text;  // adjacent literals concatenate
      n->literal = Value::string(std::move(s));
      return n;
    }
    if (t.kind == Tok::kInt || t.kind == Tok::kFloat) {
      auto n = make(Expr::Kind::kLiteral, t.line);
      std::string digits;
      for (char c : t.text)
        if (c != '_') digits += c;
      if (t.kind == Tok::kInt) {
        int64_t v = 0;
        auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
        if (r.ec != std::errc()) fail(t.line, "integer literal out of range");
        n->literal = Value::integer(v);
      } else {
        n->literal = Value::number(std::stod(digits));
      }
      ++p_;
      return n;
    }
    if (t.kind == Tok::kName) {
      const std::string& nm = t.text;
      auto lit = [&](Value v) {
        auto n = make(Expr::Kind::kLiteral, t.line);
        n->literal = std::move(v);
        ++p_;
        return n;
      };
      if (nm == "true" || nm == "True") return lit(Value::boolean(true));
      if (nm == "false" || nm == "False") return lit(Value::boolean(false));
      if (nm == "none" || nm == "None") return lit(Value::none());
      auto n = make(Expr::Kind::kName, t.line);
      n->name = nm;
      ++p_;
      return n;
    }
    if (is_op("(")) {
      const int line = next().line;
      if (is_op(")")) {
        ++p_;
        return make(Expr::Kind::kTuple, line);
      }
      ExprPtr e = parse_expr();
      if (is_op(",")) {
        auto tup = make(Expr::Kind::kTuple, line);
        tup->items.push_back(std::move(e));
        while (is_op(",")) {
          ++p_;
          if (is_op(")")) break;
          tup->items.push_back(parse_expr());
        }
        e = std::move(tup);
      }
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      auto n = make(Expr::Kind::kList, next().line);
      while (!is_op("]")) {
        n->items.push_back(parse_expr());
        if (!is_op("]")) expect_op(",");
      }
      ++p_;
      return n;
    }
    if (is_op("{")) {
      auto n = make(Expr::Kind::kDict, next().line);
      while (!is_op("}")) {
        n->items.push_back(parse_expr());
        expect_op(":");
        n->items.push_back(parse_expr());
        if (!is_op("}")) expect_op(",");
      }
      ++p_;
      return n;
    }
    fail(t.line, fmt::format("unexpected '{}' in expression", describe(t)));
  }

  std::vector<Token> t_;
  size_t p_ = 0;
};

}  // namespace

Body parse(const std::string& src) { return Parser(lex(src)).parse_all(); }

}  // namespace kvaudit::text::jinja
