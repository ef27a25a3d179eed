#include "text/bpe_model.h"

#include <fmt/format.h>

#include <queue>

#include "core/error.h"
#include "text/utf8.h"

namespace kvaudit::text {

BpeModel::BpeModel(std::unordered_map<std::string, int> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, BpeConfig cfg,
                   const std::string& what)
    : vocab_(std::move(vocab)), cfg_(cfg) {
  merges_.reserve(merges.size() * 2);
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    auto ia = vocab_.find(a), ib = vocab_.find(b), ic = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end())
      usage_error("{}: merge {} '{} {}' names a token missing from the vocabulary", what, r, a, b);
    if (ic == vocab_.end())
      usage_error("{}: merge {} '{} {}' produces a token missing from the vocabulary", what, r, a, b);
    // A duplicated pair keeps its last rank: HF collects the merges into a hash map in order.
    merges_[pair_key(ia->second, ib->second)] = {static_cast<int>(r), ic->second};
  }
  byte_ids_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(fmt::format("<0x{:02X}>", b));
    if (it != vocab_.end()) byte_ids_[b] = it->second;
  }
}

std::optional<int> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::tokenize(std::string_view word, std::vector<int>& out) const {
  if (word.empty()) return;
  if (cfg_.ignore_merges) {
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  std::string key(word);
  {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= kCacheCapacity) cache_.clear();
  cache_.emplace(std::move(key), std::move(ids));
}

void BpeModel::merge_word(std::string_view word, std::vector<int>& out) const {
  // Symbols as a doubly linked list over one vector; a merged-away symbol has id -1.
  struct Symbol {
    int id;
    int prev, next;
  };
  std::vector<Symbol> sym;  // [n_symbols]
  sym.reserve(word.size());
  bool last_unk = false;
  auto push = [&](int id) {
    const int i = static_cast<int>(sym.size());
    sym.push_back({id, i - 1, -1});
    if (i > 0) sym[i - 1].next = i;
  };
  for (size_t i = 0; i < word.size();) {
    const size_t n = utf8_char_len(word, i);
    std::string_view ch = word.substr(i, n);
    i += n;
    if (auto id = token_to_id(ch)) {
      push(*id);
      last_unk = false;
      continue;
    }
    if (cfg_.byte_fallback) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : ch) push(byte_ids_[static_cast<unsigned char>(c)]);
        last_unk = false;
        continue;
      }
    }
    if (!cfg_.unk_id) continue;  // HF drops the character when there is no unk token
    if (cfg_.fuse_unk && last_unk) continue;
    push(*cfg_.unk_id);
    last_unk = true;
  }

  struct Cand {
    int rank, pos, new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
  auto consider = [&](int pos) {
    if (pos < 0) return;
    const int nx = sym[pos].next;
    if (nx < 0) return;
    auto it = merges_.find(pair_key(sym[pos].id, sym[nx].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) consider(i);
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    Symbol& left = sym[c.pos];
    if (left.id < 0 || left.next < 0) continue;
    Symbol& right = sym[left.next];
    auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.rank != c.rank || it->second.new_id != c.new_id) continue;
    left.id = c.new_id;
    const int gone = left.next;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = c.pos;
    sym[gone].id = -1;
    consider(left.prev);
    consider(c.pos);
  }
  for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace kvaudit::text
