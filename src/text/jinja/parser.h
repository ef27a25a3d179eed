// Parser for the Jinja subset (statements: if/elif/else, for (with loop filter and else), set
// (name, tuple, namespace attribute, block), macro, break/continue; expressions with Jinja's
// precedence). Anything else is a UsageError naming the template line.
#pragma once
#include <string>

#include "text/jinja/ast.h"

namespace kvaudit::text::jinja {

Body parse(const std::string& src);

}  // namespace kvaudit::text::jinja
