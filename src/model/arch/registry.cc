// model_type -> ArchSpec (SPEC.md §1: an unsupported architecture names what is supported).
#include <algorithm>
#include <map>

#include <fmt/ranges.h>

#include "core/error.h"
#include "model/arch.h"
#include "model/arch/arch_list.h"

namespace kvaudit::model {

namespace {

const std::map<std::string, ArchSpec>& registry() {
  static const std::map<std::string, ArchSpec> specs = [] {
    std::map<std::string, ArchSpec> m;
    for (ArchSpec s : {arch::llama(), arch::mistral(), arch::qwen2(), arch::qwen3(), arch::phi3(),
                       arch::gemma2(), arch::olmo2()})
      m.emplace(s.name, s);
    return m;
  }();
  return specs;
}

}  // namespace

std::vector<std::string> supported_archs() {
  std::vector<std::string> names;
  for (const auto& [name, spec] : registry()) names.push_back(name);
  return names;
}

const ArchSpec& arch_spec(const std::string& model_type) {
  const auto& r = registry();
  auto it = r.find(model_type);
  if (it == r.end())
    usage_error("unsupported architecture '{}' (supported: {})", model_type,
                fmt::join(supported_archs(), ", "));
  return it->second;
}

}  // namespace kvaudit::model
