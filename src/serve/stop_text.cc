#include "serve/stop_text.h"

#include <algorithm>

namespace kvaudit::serve {

StopText::StopText(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

bool StopText::cut(size_t from) {
  size_t first = std::string::npos;
  for (const auto& s : stops_) first = std::min(first, text_.find(s, from));
  if (first == std::string::npos) return false;
  text_.resize(first);
  stopped_ = true;
  return true;
}

bool StopText::append(const std::string& piece) {
  if (stopped_) return true;
  // A stop string found now ends within `piece`, so it starts at most (its length - 1) bytes before.
  size_t longest = 0;
  for (const auto& s : stops_) longest = std::max(longest, s.size());
  const size_t from = text_.size() >= longest ? text_.size() - longest + 1 : 0;
  text_ += piece;
  return cut(from);
}

bool StopText::reset(const std::string& text) {
  text_ = text;
  stopped_ = false;
  return cut(0);
}

size_t StopText::stable_size() const {
  if (stopped_) return text_.size();
  size_t hold = 0;
  for (const auto& s : stops_)
    for (size_t n = std::min(s.size() - 1, text_.size()); n > hold; --n)
      if (text_.compare(text_.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
  return text_.size() - hold;
}

}  // namespace kvaudit::serve
