// Evaluates a parsed template against a context (SPEC.md §2). Scoping follows Jinja: each for-loop
// iteration and macro call has its own scope (hence namespace()); globals are those transformers
// installs: raise_exception, strftime_now, namespace, dict, range.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "text/jinja/ast.h"

namespace kvaudit::text::jinja {

struct RenderOptions {
  std::optional<int64_t> now_unix;  // clock for strftime_now (local time); default: the real clock
};

// raise_exception(msg) throws TemplateRaised(msg); other errors UsageError "chat template line N: ...".
std::string render(const Body& program, const nlohmann::json& context, const RenderOptions& opts);

// Filters, tests and methods (builtins.cc). Return nullopt when the name is unknown.
std::optional<Value> apply_filter(const std::string& name, Value& v, std::vector<Value>& args, KwArgs& kwargs,
                                  int line);
std::optional<bool> apply_test(const std::string& name, const Value& v, std::vector<Value>& args, int line);
// Attribute lookup that yields a bound method for str/dict/list methods (nullopt if none).
std::optional<Value> bound_method(const Value& obj, const std::string& name, int line);

[[noreturn]] void fail_at(int line, const std::string& msg);

}  // namespace kvaudit::text::jinja
