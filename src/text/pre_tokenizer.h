// tokenizer.json "pre_tokenizer" (SPEC.md §2): splits each normalized piece of text into words
// for the BPE model. Supported: Sequence, Split, ByteLevel, Metaspace, Digits, Whitespace,
// WhitespaceSplit. Split behaviours follow HF's SplitDelimiterBehavior exactly.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::text {

struct Piece {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the original input (Metaspace prepend_scheme "first")
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void apply(std::vector<Piece>& pieces) const = 0;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Splits `s` at the given sorted, non-overlapping matches [begin, end) per `behavior`; `invert`
// swaps the roles of matches and the text between them. Empty results are dropped.
std::vector<std::pair<size_t, size_t>> split_by_matches(size_t len,
                                                        const std::vector<std::pair<size_t, size_t>>& matches,
                                                        SplitBehavior behavior, bool invert);

// null JSON -> nullptr. Unsupported types throw UsageError naming `what` and the type.
std::unique_ptr<PreTokenizer> build_pre_tokenizer(const nlohmann::json& j, const std::string& what);

}  // namespace kvaudit::text
