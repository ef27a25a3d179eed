// Runtime values of the Jinja-subset interpreter, with Python semantics where templates see them
// (str(), truthiness, ==, json.dumps for tojson) so renders match jinja2 byte for byte (SPEC.md §2).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::text::jinja {

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion order, as Python dicts
using KwArgs = std::vector<std::pair<std::string, Value>>;
using Function = std::function<Value(std::vector<Value>& args, KwArgs& kwargs)>;

struct Value {
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                     // kString; kUndefined: the name that was looked up
  std::shared_ptr<List> list;        // kList (tuples too); shared: Python reference semantics
  std::shared_ptr<Dict> dict;        // kDict
  std::shared_ptr<Function> fn;      // kFunction
  bool is_namespace = false;         // kDict made by namespace(): attributes are assignable

  static Value undefined(std::string name = "") { Value v; v.s = std::move(name); return v; }
  static Value none() { Value v; v.kind = Kind::kNone; return v; }
  static Value boolean(bool x) { Value v; v.kind = Kind::kBool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Kind::kInt; v.i = x; return v; }
  static Value number(double x) { Value v; v.kind = Kind::kFloat; v.f = x; return v; }
  static Value string(std::string x) { Value v; v.kind = Kind::kString; v.s = std::move(x); return v; }
  static Value make_list(List l = {}) { Value v; v.kind = Kind::kList; v.list = std::make_shared<List>(std::move(l)); return v; }
  static Value make_dict(Dict d = {}) { Value v; v.kind = Kind::kDict; v.dict = std::make_shared<Dict>(std::move(d)); return v; }
  static Value function(Function f) { Value v; v.kind = Kind::kFunction; v.fn = std::make_shared<Function>(std::move(f)); return v; }
  static Value from_json(const nlohmann::json& j);

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool; }
  double as_double() const { return kind == Kind::kFloat ? f : kind == Kind::kBool ? b : static_cast<double>(i); }

  bool truthy() const;
  const Value* find(const std::string& key) const;  // dict lookup, nullptr if absent
  void set(const std::string& key, Value v);        // dict insert/overwrite
};

std::string type_name(const Value& v);
std::string to_str(const Value& v);   // Python str()
std::string to_repr(const Value& v);  // Python repr()
bool equals(const Value& a, const Value& b);
// Python json.dumps(v, ensure_ascii=False, indent=indent) (indent < 0: None); throws on
// undefined/function values via the returned flag.
std::string to_json(const Value& v, int indent);
size_t utf8_length(const std::string& s);  // code points, as Python len(str)

}  // namespace kvaudit::text::jinja
