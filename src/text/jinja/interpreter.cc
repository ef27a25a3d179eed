#include "text/jinja/interpreter.h"

#include <cmath>
#include <ctime>
#include <unordered_map>

#include "core/error.h"
#include "text/chat_template.h"
#include "text/utf8.h"

namespace kvaudit::text::jinja {

void fail_at(int line, const std::string& msg) { usage_error("chat template line {}: {}", line, msg); }

namespace {

// Guards against runaway templates (fuzzing, hostile input): output and loop budgets.
constexpr size_t kMaxOutputBytes = 64u << 20;
constexpr int64_t kMaxSteps = 50'000'000;
constexpr int kMaxDepth = 200;

struct LoopSignal {
  enum { kNone, kBreak, kContinue } kind = kNone;
};

class Interpreter {
 public:
  Interpreter(const nlohmann::json& ctx, const RenderOptions& opts) : opts_(opts) {
    scopes_.emplace_back();
    if (ctx.is_object())
      for (const auto& [k, v] : ctx.items()) scopes_.back()[k] = Value::from_json(v);
    install_globals();
  }

  std::string run(const Body& b) {
    exec_body(b);
    return std::move(out_);
  }

 private:
  using Scope = std::unordered_map<std::string, Value>;

  void install_globals() {
    Scope& g = scopes_.front();
    auto def = [&](const char* name, Function f) {
      if (!g.count(name)) g[name] = Value::function(std::move(f));
    };
    def("raise_exception", [](std::vector<Value>& a, KwArgs&) -> Value {
      throw TemplateRaised(a.empty() ? std::string() : to_str(a[0]));
    });
    def("strftime_now", [this](std::vector<Value>& a, KwArgs&) -> Value {
      const std::time_t t = opts_.now_unix ? static_cast<std::time_t>(*opts_.now_unix) : std::time(nullptr);
      std::tm tm{};
      localtime_r(&t, &tm);
      char buf[256];
      const std::string f = a.empty() ? std::string() : to_str(a[0]);
      const size_t n = std::strftime(buf, sizeof buf, f.c_str(), &tm);
      return Value::string(std::string(buf, n));
    });
    def("namespace", [](std::vector<Value>& a, KwArgs& kw) -> Value {
      Value ns = Value::make_dict();
      ns.is_namespace = true;
      if (!a.empty() && a[0].kind == Value::Kind::kDict)
        for (const auto& [k, v] : *a[0].dict) ns.set(k, v);
      for (auto& [k, v] : kw) ns.set(k, v);
      return ns;
    });
    def("dict", [](std::vector<Value>& a, KwArgs& kw) -> Value {
      Value d = Value::make_dict();
      if (!a.empty() && a[0].kind == Value::Kind::kDict)
        for (const auto& [k, v] : *a[0].dict) d.set(k, v);
      for (auto& [k, v] : kw) d.set(k, v);
      return d;
    });
    def("range", [](std::vector<Value>& a, KwArgs&) -> Value {
      int64_t lo = 0, hi = 0, step = 1;
      if (a.size() == 1) hi = a[0].i;
      if (a.size() >= 2) lo = a[0].i, hi = a[1].i;
      if (a.size() >= 3) step = a[2].i;
      if (step == 0) usage_error("range() arg 3 must not be zero");
      List l;
      for (int64_t k = lo; step > 0 ? k < hi : k > hi; k += step) {
        if (l.size() > 10'000'000) usage_error("range() too large");
        l.push_back(Value::integer(k));
      }
      return Value::make_list(std::move(l));
    });
  }

  void step(int line) {
    if (++steps_ > kMaxSteps) fail_at(line, "template runs too long (step budget exhausted)");
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return f->second;
    }
    return Value::undefined(name);
  }

  void assign(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }

  void emit(const std::string& s, int line) {
    out_ += s;
    if (out_.size() > kMaxOutputBytes) fail_at(line, "output too large");
  }

  // ---------------------------------------------------------------- statements
  LoopSignal exec_body(const Body& b) {
    for (const auto& s : b) {
      LoopSignal sig = exec(*s);
      if (sig.kind != LoopSignal::kNone) return sig;
    }
    return {};
  }

  LoopSignal exec(const Stmt& s) {
    step(s.line);
    switch (s.kind) {
      case Stmt::Kind::kText: emit(s.text, s.line); return {};
      case Stmt::Kind::kOutput: emit(to_str(eval(*s.expr)), s.line); return {};
      case Stmt::Kind::kIf:
        for (const auto& [cond, body] : s.branches)
          if (eval(*cond).truthy()) return exec_body(body);
        return exec_body(s.else_body);
      case Stmt::Kind::kFor: return exec_for(s);
      case Stmt::Kind::kSet: exec_set(s); return {};
      case Stmt::Kind::kSetBlock: {
        std::string saved = std::move(out_);
        out_.clear();
        exec_body(s.body);
        std::string captured = std::move(out_);
        out_ = std::move(saved);
        assign(s.text, Value::string(std::move(captured)));
        return {};
      }
      case Stmt::Kind::kBreak: return {LoopSignal::kBreak};
      case Stmt::Kind::kContinue: return {LoopSignal::kContinue};
      case Stmt::Kind::kMacro: define_macro(s); return {};
    }
    return {};
  }

  void exec_set(const Stmt& s) {
    Value v = eval(*s.expr);
    if (s.target_obj) {
      Value obj = eval(*s.target_obj);
      if (obj.kind != Value::Kind::kDict || !obj.is_namespace)
        fail_at(s.line, "can only set attributes of a namespace() object");
      obj.set(s.text, std::move(v));
      return;
    }
    if (s.targets.size() == 1) {
      assign(s.targets[0], std::move(v));
      return;
    }
    if (v.kind != Value::Kind::kList || v.list->size() != s.targets.size())
      fail_at(s.line, fmt::format("cannot unpack into {} names", s.targets.size()));
    for (size_t k = 0; k < s.targets.size(); ++k) assign(s.targets[k], (*v.list)[k]);
  }

  List iterate(const Value& v, int line) {
    switch (v.kind) {
      case Value::Kind::kList: return *v.list;
      case Value::Kind::kDict: {
        List keys;
        for (const auto& [k, e] : *v.dict) keys.push_back(Value::string(k));
        return keys;
      }
      case Value::Kind::kString: {
        List chars;
        for (size_t i = 0; i < v.s.size();) {
          const size_t n = utf8_char_len(v.s, i);
          chars.push_back(Value::string(v.s.substr(i, n)));
          i += n;
        }
        return chars;
      }
      case Value::Kind::kUndefined: return {};
      default: fail_at(line, fmt::format("'{}' object is not iterable", type_name(v)));
    }
  }

  void bind_targets(const Stmt& s, const Value& item) {
    if (s.targets.size() == 1) {
      assign(s.targets[0], item);
      return;
    }
    if (item.kind != Value::Kind::kList || item.list->size() != s.targets.size())
      fail_at(s.line, fmt::format("cannot unpack loop item into {} names", s.targets.size()));
    for (size_t k = 0; k < s.targets.size(); ++k) assign(s.targets[k], (*item.list)[k]);
  }

  LoopSignal exec_for(const Stmt& s) {
    List items = iterate(eval(*s.expr), s.line);
    if (s.filter) {
      List kept;
      for (const Value& it : items) {
        scopes_.emplace_back();
        bind_targets(s, it);
        const bool keep = eval(*s.filter).truthy();
        scopes_.pop_back();
        if (keep) kept.push_back(it);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec_body(s.else_body);
    if (scopes_.size() > kMaxDepth) fail_at(s.line, "loops nested too deeply");
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
      scopes_.emplace_back();
      Value loop = Value::make_dict();
      loop.set("index", Value::integer(k + 1));
      loop.set("index0", Value::integer(k));
      loop.set("revindex", Value::integer(n - k));
      loop.set("revindex0", Value::integer(n - k - 1));
      loop.set("first", Value::boolean(k == 0));
      loop.set("last", Value::boolean(k == n - 1));
      loop.set("length", Value::integer(n));
      loop.set("previtem", k > 0 ? items[k - 1] : Value::undefined("previtem"));
      loop.set("nextitem", k + 1 < n ? items[k + 1] : Value::undefined("nextitem"));
      loop.set("cycle", Value::function([k](std::vector<Value>& a, KwArgs&) -> Value {
                 return a.empty() ? Value::none() : a[static_cast<size_t>(k) % a.size()];
               }));
      assign("loop", std::move(loop));
      bind_targets(s, items[k]);
      const LoopSignal sig = exec_body(s.body);
      scopes_.pop_back();
      if (sig.kind == LoopSignal::kBreak) break;
    }
    return {};
  }

  void define_macro(const Stmt& s) {
    const Stmt* m = &s;
    assign(s.text, Value::function([this, m](std::vector<Value>& a, KwArgs& kw) -> Value {
             if (scopes_.size() > kMaxDepth) fail_at(m->line, "macro recursion too deep");
             std::vector<Value> vals;
             for (size_t k = 0; k < m->targets.size(); ++k) {
               if (k < a.size()) vals.push_back(a[k]);
               else if (m->defaults[k]) vals.push_back(eval(*m->defaults[k]));
               else vals.push_back(Value::undefined(m->targets[k]));
             }
             scopes_.emplace_back();
             for (size_t k = 0; k < m->targets.size(); ++k) assign(m->targets[k], vals[k]);
             for (auto& [k, v] : kw) assign(k, v);
             std::string saved = std::move(out_);
             out_.clear();
             exec_body(m->body);
             std::string result = std::move(out_);
             out_ = std::move(saved);
             scopes_.pop_back();
             return Value::string(std::move(result));
           }));
  }

  // ---------------------------------------------------------------- expressions
  Value getattr(const Value& obj, const std::string& name, int line) {
    if (obj.is_undefined()) fail_at(line, fmt::format("'{}' is undefined", obj.s.empty() ? "value" : obj.s));
    if (obj.kind == Value::Kind::kDict) {
      if (!obj.is_namespace)
        if (auto m = bound_method(obj, name, line)) return *m;
      if (const Value* v = obj.find(name)) return *v;
      return Value::undefined(name);
    }
    if (auto m = bound_method(obj, name, line)) return *m;
    if (obj.kind == Value::Kind::kList) {  // jinja falls back to getitem: x.0
      char* end = nullptr;
      const long idx = std::strtol(name.c_str(), &end, 10);
      if (end && *end == '\0' && !name.empty()) return getitem(obj, Value::integer(idx), line);
    }
    return Value::undefined(name);
  }

  Value getitem(const Value& obj, const Value& key, int line) {
    if (obj.is_undefined()) fail_at(line, fmt::format("'{}' is undefined", obj.s.empty() ? "value" : obj.s));
    if (obj.kind == Value::Kind::kDict) {
      if (key.is_string())
        if (const Value* v = obj.find(key.s)) return *v;
      return Value::undefined(key.is_string() ? key.s : to_str(key));
    }
    if ((obj.kind == Value::Kind::kList || obj.is_string()) && key.kind == Value::Kind::kInt) {
      if (obj.is_string()) {
        List chars = iterate(obj, line);
        int64_t i = key.i < 0 ? key.i + static_cast<int64_t>(chars.size()) : key.i;
        if (i < 0 || i >= static_cast<int64_t>(chars.size())) return Value::undefined("index");
        return chars[i];
      }
      int64_t i = key.i < 0 ? key.i + static_cast<int64_t>(obj.list->size()) : key.i;
      if (i < 0 || i >= static_cast<int64_t>(obj.list->size())) return Value::undefined("index");
      return (*obj.list)[i];
    }
    if (key.is_string()) return getattr(obj, key.s, line);
    return Value::undefined();
  }

  Value slice(const Value& obj, const Expr& e) {
    List items = obj.is_string() ? iterate(obj, e.line)
                 : obj.kind == Value::Kind::kList ? *obj.list
                                                  : (fail_at(e.line, fmt::format("cannot slice '{}'", type_name(obj))), List{});
    const int64_t n = static_cast<int64_t>(items.size());
    auto opt = [&](const ExprPtr& x) -> std::optional<int64_t> {
      if (!x) return std::nullopt;
      Value v = eval(*x);
      if (v.is_none()) return std::nullopt;
      if (v.kind != Value::Kind::kInt) fail_at(e.line, "slice indices must be integers");
      return v.i;
    };
    const int64_t st = opt(e.slice_step).value_or(1);
    if (st == 0) fail_at(e.line, "slice step cannot be zero");
    // Python slice normalisation.
    auto norm = [&](std::optional<int64_t> x, int64_t dflt) {
      if (!x) return dflt;
      int64_t v = *x < 0 ? *x + n : *x;
      if (st > 0) return std::clamp<int64_t>(v, 0, n);
      return std::clamp<int64_t>(v, -1, n - 1);
    };
    const int64_t lo = norm(opt(e.b), st > 0 ? 0 : n - 1), hi = norm(opt(e.c), st > 0 ? n : -1);
    List out;
    for (int64_t k = lo; st > 0 ? k < hi : k > hi; k += st) out.push_back(items[k]);
    if (obj.is_string()) {
      std::string s;
      for (const Value& c : out) s += c.s;
      return Value::string(std::move(s));
    }
    return Value::make_list(std::move(out));
  }

  Value call(const Value& f, const Expr& e) {
    std::vector<Value> args;
    KwArgs kw;
    for (const auto& a : e.items) args.push_back(eval(*a));
    for (const auto& [k, a] : e.kwargs) kw.emplace_back(k, eval(*a));
    if (f.kind != Value::Kind::kFunction) {
      const std::string what = e.a->kind == Expr::Kind::kName ? e.a->name
                               : e.a->kind == Expr::Kind::kGetAttr ? e.a->name : type_name(f);
      fail_at(e.line, fmt::format("'{}' is not callable (unsupported function or method?)", what));
    }
    try {
      return (*f.fn)(args, kw);
    } catch (const TemplateRaised&) {
      throw;
    } catch (const UsageError& err) {
      const std::string msg = err.what();
      if (msg.rfind("chat template line", 0) == 0) throw;
      fail_at(e.line, msg);
    }
  }

  Value arith(const std::string& op, const Value& a, const Value& b, int line) {
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value::string(a.s + b.s);
      if (a.kind == Value::Kind::kList && b.kind == Value::Kind::kList) {
        List l = *a.list;
        l.insert(l.end(), b.list->begin(), b.list->end());
        return Value::make_list(std::move(l));
      }
    }
    if (op == "*" && a.is_string() && b.kind == Value::Kind::kInt) {
      std::string s;
      if (b.i > 0 && a.s.size() * static_cast<size_t>(b.i) > kMaxOutputBytes) fail_at(line, "string too large");
      for (int64_t k = 0; k < b.i; ++k) s += a.s;
      return Value::string(std::move(s));
    }
    if (op == "%" && a.is_string()) return Value::string(percent_format(a.s, b, line));
    if (!a.is_number() || !b.is_number())
      fail_at(line, fmt::format("unsupported operand types for {}: '{}' and '{}'", op, type_name(a), type_name(b)));
    const bool ints = a.kind != Value::Kind::kFloat && b.kind != Value::Kind::kFloat;
    const int64_t x = a.kind == Value::Kind::kBool ? a.b : a.i, y = b.kind == Value::Kind::kBool ? b.b : b.i;
    if (ints && (op == "+" || op == "-" || op == "*")) {
      int64_t r;
      bool ovf = op == "+" ? __builtin_add_overflow(x, y, &r) : op == "-" ? __builtin_sub_overflow(x, y, &r)
                                                                       : __builtin_mul_overflow(x, y, &r);
      if (ovf) fail_at(line, "integer overflow");
      return Value::integer(r);
    }
    const double p = a.as_double(), q = b.as_double();
    if (op == "/") {
      if (q == 0) fail_at(line, "division by zero");
      return Value::number(p / q);
    }
    if (op == "//" || op == "%") {
      if (q == 0) fail_at(line, "division by zero");
      if (ints) {
        if (x == INT64_MIN && y == -1) fail_at(line, "integer overflow");
        int64_t d = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) --d, m += y;  // Python floors
        return Value::integer(op == "//" ? d : m);
      }
      const double d = std::floor(p / q);
      return Value::number(op == "//" ? d : p - d * q);
    }
    if (op == "**") {
      if (ints && y >= 0) {
        int64_t r = 1;
        for (int64_t k = 0; k < y; ++k)
          if (__builtin_mul_overflow(r, x, &r)) fail_at(line, "integer overflow");
        return Value::integer(r);
      }
      return Value::number(std::pow(p, q));
    }
    if (op == "+") return Value::number(p + q);
    if (op == "-") return Value::number(p - q);
    if (op == "*") return Value::number(p * q);
    fail_at(line, "unsupported operator " + op);
  }

  // Python "%s %d" % (a, b) for %s, %d, %i, %r, %% only.
  std::string percent_format(const std::string& f, const Value& args, int line) {
    List a = args.kind == Value::Kind::kList ? *args.list : List{args};
    size_t next = 0;
    std::string out;
    for (size_t k = 0; k < f.size(); ++k) {
      if (f[k] != '%') {
        out += f[k];
        continue;
      }
      if (++k >= f.size()) fail_at(line, "incomplete format");
      const char c = f[k];
      if (c == '%') {
        out += '%';
        continue;
      }
      if (next >= a.size()) fail_at(line, "not enough arguments for format string");
      const Value& v = a[next++];
      if (c == 's') out += to_str(v);
      else if (c == 'r') out += to_repr(v);
      else if (c == 'd' || c == 'i') out += std::to_string(v.kind == Value::Kind::kFloat ? static_cast<int64_t>(v.f) : v.i);
      else fail_at(line, fmt::format("unsupported format '%{}'", c));
    }
    return out;
  }

  bool compare(const std::string& op, const Value& a, const Value& b, int line) {
    if (op == "==") return equals(a, b);
    if (op == "!=") return !equals(a, b);
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.is_string()) {
        if (!a.is_string()) fail_at(line, "'in <string>' requires string as left operand");
        found = b.s.find(a.s) != std::string::npos;
      } else if (b.kind == Value::Kind::kList) {
        for (const Value& e : *b.list) found = found || equals(a, e);
      } else if (b.kind == Value::Kind::kDict) {
        found = a.is_string() && b.find(a.s) != nullptr;
      } else if (!b.is_undefined()) {
        fail_at(line, fmt::format("argument of type '{}' is not iterable", type_name(b)));
      }
      return op == "in" ? found : !found;
    }
    int c;
    if (a.is_number() && b.is_number()) c = a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double();
    else if (a.is_string() && b.is_string()) c = a.s.compare(b.s) < 0 ? -1 : a.s.compare(b.s) > 0;
    else fail_at(line, fmt::format("'{}' not supported between '{}' and '{}'", op, type_name(a), type_name(b)));
    if (op == "<") return c < 0;
    if (op == ">") return c > 0;
    if (op == "<=") return c <= 0;
    return c >= 0;
  }

  Value eval(const Expr& e) {
    step(e.line);
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.literal;
      case Expr::Kind::kName: return lookup(e.name);
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        List l;
        for (const auto& x : e.items) l.push_back(eval(*x));
        return Value::make_list(std::move(l));
      }
      case Expr::Kind::kDict: {
        Value d = Value::make_dict();
        for (size_t k = 0; k + 1 < e.items.size(); k += 2) {
          Value key = eval(*e.items[k]);
          d.set(to_str(key), eval(*e.items[k + 1]));
        }
        return d;
      }
      case Expr::Kind::kGetAttr: return getattr(eval(*e.a), e.name, e.line);
      case Expr::Kind::kGetItem: {
        Value obj = eval(*e.a);
        return getitem(obj, eval(*e.b), e.line);
      }
      case Expr::Kind::kSlice: return slice(eval(*e.a), e);
      case Expr::Kind::kCall: return call(eval(*e.a), e);
      case Expr::Kind::kFilter: {
        Value v = eval(*e.a);
        std::vector<Value> args;
        KwArgs kw;
        for (const auto& a : e.items) args.push_back(eval(*a));
        for (const auto& [k, a] : e.kwargs) kw.emplace_back(k, eval(*a));
        auto r = apply_filter(e.name, v, args, kw, e.line);
        if (!r) fail_at(e.line, fmt::format("unsupported filter '{}'", e.name));
        return *r;
      }
      case Expr::Kind::kTest: {
        Value v = e.name == "defined" || e.name == "undefined" ? eval_maybe_undefined(*e.a) : eval(*e.a);
        std::vector<Value> args;
        for (const auto& a : e.items) args.push_back(eval(*a));
        auto r = apply_test(e.name, v, args, e.line);
        if (!r) fail_at(e.line, fmt::format("unsupported test '{}'", e.name));
        return Value::boolean(*r != e.negated);
      }
      case Expr::Kind::kUnary: {
        Value v = eval(*e.a);
        if (e.name == "+") return v;
        if (v.kind == Value::Kind::kInt) {
          if (v.i == INT64_MIN) fail_at(e.line, "integer overflow");
          return Value::integer(-v.i);
        }
        if (v.kind == Value::Kind::kFloat) return Value::number(-v.f);
        fail_at(e.line, fmt::format("bad operand type for unary -: '{}'", type_name(v)));
      }
      case Expr::Kind::kBinary: {
        Value a = eval(*e.a), b = eval(*e.b);
        if (e.name == "~") return Value::string(to_str(a) + to_str(b));
        if (e.name == "==" || e.name == "!=" || e.name == "<" || e.name == ">" || e.name == "<=" ||
            e.name == ">=" || e.name == "in" || e.name == "not in")
          return Value::boolean(compare(e.name, a, b, e.line));
        return arith(e.name, a, b, e.line);
      }
      case Expr::Kind::kAnd: {
        Value a = eval(*e.a);
        return a.truthy() ? eval(*e.b) : a;
      }
      case Expr::Kind::kOr: {
        Value a = eval(*e.a);
        return a.truthy() ? a : eval(*e.b);
      }
      case Expr::Kind::kNot: return Value::boolean(!eval(*e.a).truthy());
      case Expr::Kind::kTernary:
        if (eval(*e.a).truthy()) return eval(*e.b);
        return e.c ? eval(*e.c) : Value::undefined();
    }
    return Value::undefined();
  }

  // `x.y is defined` must not fail when x is undefined.
  Value eval_maybe_undefined(const Expr& e) {
    if (e.kind == Expr::Kind::kGetAttr || e.kind == Expr::Kind::kGetItem) {
      Value obj = eval_maybe_undefined(*e.a);
      if (obj.is_undefined()) return obj;
      return e.kind == Expr::Kind::kGetAttr ? getattr(obj, e.name, e.line) : getitem(obj, eval(*e.b), e.line);
    }
    return eval(e);
  }

  const RenderOptions& opts_;
  std::vector<Scope> scopes_;
  std::string out_;
  int64_t steps_ = 0;
};

}  // namespace

std::string render(const Body& program, const nlohmann::json& context, const RenderOptions& opts) {
  return Interpreter(context, opts).run(program);
}

}  // namespace kvaudit::text::jinja
