// BPE model as HF `tokenizers` models::bpe (SPEC.md §2): a word is split into characters (unknown
// characters become <0xXX> byte tokens with byte_fallback, else the unk token), then the adjacent
// pair with the lowest merge rank is merged repeatedly (ties: leftmost first) until none applies.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kvaudit::text {

struct BpeConfig {
  bool byte_fallback = false;
  bool ignore_merges = false;  // a word that is itself in the vocabulary is one token
  bool fuse_unk = false;
  std::optional<int> unk_id;
};

class BpeModel {
 public:
  // vocab: token string -> id; merges in rank order, each a pair of token strings.
  // Throws UsageError (naming `what`) if a merge names a token not in the vocabulary.
  BpeModel(std::unordered_map<std::string, int> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, BpeConfig cfg,
           const std::string& what);

  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int>& out) const;

  std::optional<int> token_to_id(std::string_view token) const;
  const std::unordered_map<std::string, int>& vocab() const { return vocab_; }

 private:
  struct MergeTarget {
    int rank;
    int new_id;
  };
  static uint64_t pair_key(int a, int b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view word, std::vector<int>& out) const;

  std::unordered_map<std::string, int> vocab_;
  std::unordered_map<uint64_t, MergeTarget> merges_;  // (left id, right id) -> rank, merged id
  std::array<int, 256> byte_ids_;                     // <0xXX> token ids, -1 if absent
  BpeConfig cfg_;

  // Word cache: pre-tokenized words repeat heavily in text (HF keeps one too).
  static constexpr size_t kCacheCapacity = 1 << 16;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

}  // namespace kvaudit::text
