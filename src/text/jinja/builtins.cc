// Filters, tests and Python str/dict methods the supported chat templates use (SPEC.md §2).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "text/jinja/interpreter.h"
#include "text/utf8.h"

namespace kvaudit::text::jinja {
namespace {

bool py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string strip(const std::string& s, bool left, bool right, const Value* chars) {
  auto drop = [&](char c) { return chars && chars->is_string() ? chars->s.find(c) != std::string::npos : py_space(c); };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && drop(s[b])) ++b;
  if (right)
    while (e > b && drop(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(c));
  return s;
}

// Python str.title() for ASCII letters: upper after a non-letter, lower after a letter.
std::string title(const std::string& s) {
  std::string out = s;
  bool prev_letter = false;
  for (char& c : out) {
    const bool letter = std::isalpha(static_cast<unsigned char>(c));
    if (letter) c = static_cast<char>(prev_letter ? std::tolower(c) : std::toupper(c));
    prev_letter = letter || static_cast<unsigned char>(c) >= 0x80;
  }
  return out;
}

List split(const std::string& s, const Value* sep, int64_t maxsplit) {
  List out;
  if (!sep || sep->is_none()) {  // split on runs of whitespace, dropping empties
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && py_space(s[i])) ++i;
      if (i >= s.size()) break;
      size_t j = i;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) j = s.size();
      else
        while (j < s.size() && !py_space(s[j])) ++j;
      out.push_back(Value::string(maxsplit >= 0 && j == s.size() ? strip(s.substr(i), false, true, nullptr) : s.substr(i, j - i)));
      i = j;
    }
    return out;
  }
  const std::string& d = sep->s;
  if (d.empty()) usage_error("empty separator");
  size_t i = 0;
  while (true) {
    const size_t j = s.find(d, i);
    if (j == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit)) {
      out.push_back(Value::string(s.substr(i)));
      return out;
    }
    out.push_back(Value::string(s.substr(i, j - i)));
    i = j + d.size();
  }
}

std::string replace_all(const std::string& s, const std::string& a, const std::string& b, int64_t count) {
  if (a.empty()) {  // Python inserts b between characters
    std::string out = b;
    for (size_t i = 0; i < s.size();) {
      const size_t n = utf8_char_len(s, i);
      out += s.substr(i, n) + b;
      i += n;
    }
    return out;
  }
  std::string out;
  size_t i = 0;
  for (int64_t k = 0; count < 0 || k < count; ++k) {
    const size_t j = s.find(a, i);
    if (j == std::string::npos) break;
    out += s.substr(i, j - i) + b;
    i = j + a.size();
  }
  return out + s.substr(i);
}

const Value* kwarg(KwArgs& kw, const char* name) {
  for (auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

const Value* arg(std::vector<Value>& a, KwArgs& kw, size_t i, const char* name) {
  if (i < a.size()) return &a[i];
  return kwarg(kw, name);
}

List as_list(const Value& v, int line) {
  if (v.kind == Value::Kind::kList) return *v.list;
  if (v.kind == Value::Kind::kDict) {
    List keys;
    for (const auto& [k, e] : *v.dict) keys.push_back(Value::string(k));
    return keys;
  }
  if (v.is_string()) {
    List chars;
    for (size_t i = 0; i < v.s.size();) {
      const size_t n = utf8_char_len(v.s, i);
      chars.push_back(Value::string(v.s.substr(i, n)));
      i += n;
    }
    return chars;
  }
  if (v.is_undefined()) return {};
  fail_at(line, fmt::format("'{}' object is not iterable", type_name(v)));
}

Value attribute_of(const Value& v, const std::string& path) {
  Value cur = v;
  size_t i = 0;
  while (i <= path.size()) {
    const size_t j = std::min(path.find('.', i), path.size());
    const std::string part = path.substr(i, j - i);
    const Value* f = cur.find(part);
    if (!f) return Value::undefined(part);
    cur = *f;
    i = j + 1;
  }
  return cur;
}

}  // namespace

std::optional<bool> apply_test(const std::string& name, const Value& v, std::vector<Value>& args, int line) {
  using K = Value::Kind;
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.kind == K::kInt || v.kind == K::kFloat;
  if (name == "integer") return v.kind == K::kInt;
  if (name == "float") return v.kind == K::kFloat;
  if (name == "boolean") return v.kind == K::kBool;
  if (name == "true") return v.kind == K::kBool && v.b;
  if (name == "false") return v.kind == K::kBool && !v.b;
  if (name == "mapping") return v.kind == K::kDict;
  if (name == "sequence") return v.kind == K::kList || v.is_string() || v.kind == K::kDict;
  if (name == "iterable") return v.kind == K::kList || v.is_string() || v.kind == K::kDict;
  if (name == "callable") return v.kind == K::kFunction;
  if (name == "lower") return v.is_string() && ascii_map(v.s, [](int c) { return std::tolower(c); }) == v.s;
  if (name == "upper") return v.is_string() && ascii_map(v.s, [](int c) { return std::toupper(c); }) == v.s;
  auto need = [&]() -> const Value& {
    if (args.empty()) fail_at(line, fmt::format("test '{}' needs an argument", name));
    return args[0];
  };
  if (name == "equalto" || name == "eq" || name == "==") return equals(v, need());
  if (name == "ne" || name == "!=") return !equals(v, need());
  if (name == "sameas") return equals(v, need()) && v.kind == need().kind;
  if (name == "in") {
    const Value& c = need();
    if (c.kind == K::kList) return std::any_of(c.list->begin(), c.list->end(), [&](const Value& e) { return equals(v, e); });
    if (c.is_string()) return v.is_string() && c.s.find(v.s) != std::string::npos;
    if (c.kind == K::kDict) return v.is_string() && c.find(v.s) != nullptr;
    return false;
  }
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (v.kind != K::kInt) fail_at(line, fmt::format("test '{}' needs an integer", name));
    if (name == "odd") return v.i % 2 != 0;
    if (name == "even") return v.i % 2 == 0;
    const Value& d = need();
    if (d.kind != K::kInt || d.i == 0) fail_at(line, "divisibleby needs a non-zero integer");
    return v.i % d.i == 0;
  }
  return std::nullopt;
}

std::optional<Value> apply_filter(const std::string& name, Value& v, std::vector<Value>& a, KwArgs& kw, int line) {
  using K = Value::Kind;
  auto need_str = [&]() -> const std::string& {
    if (!v.is_string()) fail_at(line, fmt::format("filter '{}' needs a string, got '{}'", name, type_name(v)));
    return v.s;
  };
  if (name == "trim") return Value::string(strip(to_str(v), true, true, arg(a, kw, 0, "chars")));
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value::integer(static_cast<int64_t>(utf8_length(v.s)));
    if (v.kind == K::kList) return Value::integer(static_cast<int64_t>(v.list->size()));
    if (v.kind == K::kDict) return Value::integer(static_cast<int64_t>(v.dict->size()));
    if (v.is_undefined()) return Value::integer(0);
    fail_at(line, fmt::format("object of type '{}' has no len()", type_name(v)));
  }
  if (name == "tojson") {
    const Value* ind = arg(a, kw, 0, "indent");
    return Value::string(to_json(v, ind && ind->kind == K::kInt ? static_cast<int>(std::clamp<int64_t>(ind->i, 0, 64)) : -1));
  }
  if (name == "string") return Value::string(to_str(v));
  if (name == "lower") return Value::string(ascii_map(to_str(v), [](int c) { return std::tolower(c); }));
  if (name == "upper") return Value::string(ascii_map(to_str(v), [](int c) { return std::toupper(c); }));
  if (name == "title") return Value::string(title(to_str(v)));
  if (name == "capitalize") {
    std::string s = ascii_map(to_str(v), [](int c) { return std::tolower(c); });
    if (!s.empty()) s[0] = static_cast<char>(std::toupper(s[0]));
    return Value::string(s);
  }
  if (name == "replace") {
    if (a.size() < 2) fail_at(line, "replace needs two arguments");
    const int64_t count = a.size() > 2 && a[2].kind == K::kInt ? a[2].i : -1;
    return Value::string(replace_all(to_str(v), to_str(a[0]), to_str(a[1]), count));
  }
  if (name == "first" || name == "last") {
    List l = as_list(v, line);
    if (l.empty()) return Value::undefined(name);
    return name == "first" ? l.front() : l.back();
  }
  if (name == "join") {
    const Value* sep = arg(a, kw, 0, "d");
    const Value* attr = arg(a, kw, 1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& e : as_list(v, line)) {
      if (!first) out += sep ? to_str(*sep) : "";
      first = false;
      out += to_str(attr ? attribute_of(e, to_str(*attr)) : e);
    }
    return Value::string(out);
  }
  if (name == "default" || name == "d") {
    const Value* dflt = arg(a, kw, 0, "default_value");
    const Value* boolean = arg(a, kw, 1, "boolean");
    const bool use = v.is_undefined() || (boolean && boolean->truthy() && !v.truthy());
    return use ? (dflt ? *dflt : Value::string("")) : v;
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::make_list();
    if (v.kind != K::kDict) fail_at(line, "items filter needs a mapping");
    List out;
    for (const auto& [k, e] : *v.dict) out.push_back(Value::make_list({Value::string(k), e}));
    return Value::make_list(std::move(out));
  }
  if (name == "list") return Value::make_list(as_list(v, line));
  if (name == "reverse") {
    if (v.is_string()) {
      List c = as_list(v, line);
      std::string s;
      for (auto it = c.rbegin(); it != c.rend(); ++it) s += it->s;
      return Value::string(s);
    }
    List l = as_list(v, line);
    std::reverse(l.begin(), l.end());
    return Value::make_list(std::move(l));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool by_attr = name.size() > 6;
    const bool want = name.rfind("select", 0) == 0;
    size_t k = 0;
    std::string attr;
    if (by_attr) {
      if (a.empty()) fail_at(line, name + " needs an attribute name");
      attr = to_str(a[k++]);
    }
    std::string test = k < a.size() ? to_str(a[k++]) : "";
    std::vector<Value> targs(a.begin() + static_cast<long>(std::min(k, a.size())), a.end());
    List out;
    for (const Value& e : as_list(v, line)) {
      const Value x = by_attr ? attribute_of(e, attr) : e;
      bool r;
      if (test.empty()) {
        r = x.truthy();
      } else {
        auto t = apply_test(test, x, targs, line);
        if (!t) fail_at(line, fmt::format("unsupported test '{}'", test));
        r = *t;
      }
      if (r == want) out.push_back(e);
    }
    return Value::make_list(std::move(out));
  }
  if (name == "map") {
    List out;
    const Value* attr = kwarg(kw, "attribute");
    for (Value e : as_list(v, line)) {
      if (attr) {
        out.push_back(attribute_of(e, to_str(*attr)));
      } else {
        if (a.empty()) fail_at(line, "map needs a filter name or attribute=");
        std::vector<Value> rest(a.begin() + 1, a.end());
        KwArgs none;
        auto r = apply_filter(to_str(a[0]), e, rest, none, line);
        if (!r) fail_at(line, fmt::format("unsupported filter '{}'", to_str(a[0])));
        out.push_back(*r);
      }
    }
    return Value::make_list(std::move(out));
  }
  if (name == "unique") {
    List out;
    for (const Value& e : as_list(v, line))
      if (std::none_of(out.begin(), out.end(), [&](const Value& o) { return equals(o, e); })) out.push_back(e);
    return Value::make_list(std::move(out));
  }
  if (name == "abs") {
    if (v.kind == K::kInt) return Value::integer(v.i < 0 ? -v.i : v.i);
    if (v.kind == K::kFloat) return Value::number(std::fabs(v.f));
    fail_at(line, "abs needs a number");
  }
  if (name == "int") {
    if (v.kind == K::kInt) return v;
    if (v.kind == K::kFloat && std::isfinite(v.f) && std::fabs(v.f) < 9e18) return Value::integer(static_cast<int64_t>(v.f));
    if (v.is_string()) {
      char* end = nullptr;
      const long long x = std::strtoll(v.s.c_str(), &end, 10);
      return Value::integer(end && *end == '\0' && !v.s.empty() ? x : 0);
    }
    return Value::integer(0);
  }
  if (name == "float") {
    if (v.is_number()) return Value::number(v.as_double());
    if (v.is_string()) return Value::number(std::strtod(v.s.c_str(), nullptr));
    return Value::number(0);
  }
  if (name == "safe" || name == "e" || name == "escape") {
    if (name == "safe") return v;
    std::string out;
    for (char c : to_str(v)) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value::string(out);
  }
  if (name == "indent") {
    const Value* w = arg(a, kw, 0, "width");
    const std::string pad(w && w->kind == K::kInt ? static_cast<size_t>(std::clamp<int64_t>(w->i, 0, 256)) : 4, ' ');
    const Value* first = arg(a, kw, 1, "first");
    std::string s = need_str(), out;
    if (first && first->truthy()) out += pad;
    for (size_t i = 0; i < s.size(); ++i) {
      out += s[i];
      if (s[i] == '\n' && i + 1 < s.size() && s[i + 1] != '\n') out += pad;
    }
    return Value::string(out);
  }
  return std::nullopt;
}

std::optional<Value> bound_method(const Value& obj, const std::string& name, int line) {
  using K = Value::Kind;
  if (obj.is_string()) {
    const std::string s = obj.s;
    static const char* const names[] = {"strip", "lstrip", "rstrip", "split", "startswith", "endswith", "upper",
                                        "lower", "title", "capitalize", "replace", "find", "count", "splitlines",
                                        "join", "isdigit", "isspace"};
    if (std::find_if(std::begin(names), std::end(names), [&](const char* n) { return name == n; }) == std::end(names))
      return std::nullopt;
    return Value::function([s, name, line](std::vector<Value>& a, KwArgs& kw) -> Value {
      const Value* a0 = a.empty() ? nullptr : &a[0];
      if (name == "strip") return Value::string(strip(s, true, true, a0));
      if (name == "lstrip") return Value::string(strip(s, true, false, a0));
      if (name == "rstrip") return Value::string(strip(s, false, true, a0));
      if (name == "split") {
        const Value* ms = arg(a, kw, 1, "maxsplit");
        return Value::make_list(split(s, arg(a, kw, 0, "sep"), ms && ms->kind == K::kInt ? ms->i : -1));
      }
      if (name == "startswith" || name == "endswith") {
        if (!a0) fail_at(line, name + " needs an argument");
        List opts = a0->kind == K::kList ? *a0->list : List{*a0};
        for (const Value& p : opts) {
          const std::string& x = p.s;
          if (name == "startswith" ? s.rfind(x, 0) == 0 : (s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0))
            return Value::boolean(true);
        }
        return Value::boolean(false);
      }
      if (name == "upper") return Value::string(ascii_map(s, [](int c) { return std::toupper(c); }));
      if (name == "lower") return Value::string(ascii_map(s, [](int c) { return std::tolower(c); }));
      if (name == "title") return Value::string(title(s));
      if (name == "capitalize") {
        std::string t = ascii_map(s, [](int c) { return std::tolower(c); });
        if (!t.empty()) t[0] = static_cast<char>(std::toupper(t[0]));
        return Value::string(t);
      }
      if (name == "replace") {
        if (a.size() < 2) fail_at(line, "replace needs two arguments");
        return Value::string(replace_all(s, to_str(a[0]), to_str(a[1]), a.size() > 2 && a[2].kind == K::kInt ? a[2].i : -1));
      }
      if (name == "find") {
        if (!a0) fail_at(line, "find needs an argument");
        const size_t p = s.find(to_str(*a0));
        return Value::integer(p == std::string::npos ? -1 : static_cast<int64_t>(utf8_length(s.substr(0, p))));
      }
      if (name == "count") {
        if (!a0 || to_str(*a0).empty()) fail_at(line, "count needs a non-empty argument");
        int64_t n = 0;
        const std::string x = to_str(*a0);
        for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) ++n;
        return Value::integer(n);
      }
      if (name == "splitlines") {
        List out;
        size_t i = 0;
        while (i < s.size()) {
          size_t j = s.find_first_of("\r\n", i);
          if (j == std::string::npos) {
            out.push_back(Value::string(s.substr(i)));
            break;
          }
          out.push_back(Value::string(s.substr(i, j - i)));
          i = j + ((s[j] == '\r' && j + 1 < s.size() && s[j + 1] == '\n') ? 2 : 1);
        }
        return Value::make_list(std::move(out));
      }
      if (name == "join") {
        if (!a0) fail_at(line, "join needs an argument");
        std::string out;
        bool first = true;
        for (const Value& e : as_list(*a0, line)) {
          if (!first) out += s;
          first = false;
          out += to_str(e);
        }
        return Value::string(out);
      }
      if (name == "isdigit") return Value::boolean(!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }));
      return Value::boolean(!s.empty() && std::all_of(s.begin(), s.end(), py_space));  // isspace
    });
  }
  if (obj.kind == K::kDict) {
    if (name != "items" && name != "keys" && name != "values" && name != "get") return std::nullopt;
    const Value d = obj;
    return Value::function([d, name, line](std::vector<Value>& a, KwArgs&) -> Value {
      List out;
      if (name == "get") {
        if (a.empty()) fail_at(line, "get needs a key");
        const Value* v = a[0].is_string() ? d.find(a[0].s) : nullptr;
        return v ? *v : (a.size() > 1 ? a[1] : Value::none());
      }
      for (const auto& [k, v] : *d.dict) {
        if (name == "items") out.push_back(Value::make_list({Value::string(k), v}));
        else if (name == "keys") out.push_back(Value::string(k));
        else out.push_back(v);
      }
      return Value::make_list(std::move(out));
    });
  }
  return std::nullopt;
}

}  // namespace kvaudit::text::jinja
