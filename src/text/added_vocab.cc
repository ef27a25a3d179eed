#include "text/added_vocab.h"

#include <algorithm>

#include "text/utf8.h"

namespace kvaudit::text {
namespace {

// Unicode White_Space, as Rust's char::is_whitespace.
bool is_space_cp(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Word character test for single_word (ASCII alphanumerics and '_', plus any non-ASCII letter
// approximated as "not space, not ASCII punctuation").
bool is_word_cp(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return !is_space_cp(c);
}

// Code point ending at byte `end` (exclusive) of s; s valid UTF-8.
char32_t last_cp(std::string_view s, size_t end, size_t* len) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  *len = end - b;
  const size_t n = utf8_valid_len(s, b);
  return n ? utf8_decode(s, b, n) : 0xFFFD;
}

char32_t first_cp(std::string_view s, size_t begin, size_t* len) {
  const size_t n = utf8_valid_len(s, begin);
  *len = n ? n : 1;
  return n ? utf8_decode(s, begin, n) : 0xFFFD;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (!tokens_[i].content.empty())
      by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(static_cast<int>(i));
  for (auto& v : by_first_byte_)
    std::stable_sort(v.begin(), v.end(),
                     [&](int a, int b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
}

std::vector<AddedSplit> AddedTokenMatcher::split(std::string_view s) const {
  std::vector<AddedSplit> out;
  size_t done = 0;  // end of the last span pushed
  for (size_t i = 0; i < s.size();) {
    const AddedToken* hit = nullptr;
    for (int k : by_first_byte_[static_cast<unsigned char>(s[i])]) {
      const std::string& c = tokens_[k].content;
      if (s.size() - i >= c.size() && s.compare(i, c.size(), c) == 0) {
        hit = &tokens_[k];
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t b = i, e = i + hit->content.size();
    i = e;  // matches never overlap (aho-corasick find_iter)
    if (hit->single_word) {
      size_t n;
      const bool left_ok = b == 0 || !is_word_cp(last_cp(s, b, &n));
      const bool right_ok = e == s.size() || !is_word_cp(first_cp(s, e, &n));
      if (!left_ok || !right_ok) continue;
    }
    if (hit->lstrip) {
      size_t n;
      while (b > done && is_space_cp(last_cp(s, b, &n))) b -= n;
    }
    if (hit->rstrip) {
      size_t n;
      while (e < s.size() && is_space_cp(first_cp(s, e, &n))) e += n;
    }
    if (b < done) b = done;  // an earlier rstrip already took these bytes
    if (done < b) out.push_back({done, b, -1});
    out.push_back({b, e, hit->id});
    done = e;
    if (i < e) i = e;
  }
  if (done < s.size()) out.push_back({done, s.size(), -1});
  return out;
}

}  // namespace kvaudit::text
