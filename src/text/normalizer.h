// tokenizer.json "normalizer" (SPEC.md §2): applied to each piece of text between added tokens,
// before pre-tokenization. Supported: Sequence, Prepend, Replace, Lowercase, Strip.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace kvaudit::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void apply(std::string& s) const = 0;
};

// null JSON -> nullptr. Unsupported types throw UsageError naming `what` and the type.
std::unique_ptr<Normalizer> build_normalizer(const nlohmann::json& j, const std::string& what);

}  // namespace kvaudit::text
