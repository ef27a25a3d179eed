// Added tokens (tokenizer.json "added_tokens"): matched whole in the input before normalization
// and pre-tokenization, never split (SPEC.md §2). Matching is leftmost-longest, as HF's
// aho-corasick matcher; lstrip/rstrip absorb neighbouring whitespace, single_word requires word
// boundaries. Tokens with normalized=false match the raw input, the others the normalized text.
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvaudit::text {

struct AddedToken {
  std::string content;
  int id = -1;
  bool special = false;
  bool normalized = false;
  bool lstrip = false, rstrip = false, single_word = false;
};

// One span of the input: either text to tokenize (id < 0) or an added token's id.
struct AddedSplit {
  size_t begin, end;
  int id;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);
  // Splits s at every match; spans cover s without gaps except whitespace absorbed by l/rstrip.
  std::vector<AddedSplit> split(std::string_view s) const;
  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;
  std::array<std::vector<int>, 256> by_first_byte_;  // token indices, longest content first
};

}  // namespace kvaudit::text
