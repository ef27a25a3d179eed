// OpenAI's `stop` strings on a growing completion: the text ends before the first occurrence of any
// stop string (which is not returned), and while streaming, text that may still turn out to be the
// start of a stop string is held back.
#pragma once
#include <string>
#include <vector>

namespace kvaudit::serve {

class StopText {
 public:
  explicit StopText(std::vector<std::string> stops);

  // Appends `piece`; true when a stop string now occurs (text() then ends before it).
  bool append(const std::string& piece);
  // Replaces the whole text (e.g. by the full decode at the end); true when a stop string occurs.
  bool reset(const std::string& text);
  const std::string& text() const { return text_; }
  // Length of the prefix of text() that no later piece can cut: all of it once stopped, else
  // text() minus its longest suffix that is a proper prefix of a stop string.
  size_t stable_size() const;
  bool stopped() const { return stopped_; }

 private:
  bool cut(size_t from);
  std::vector<std::string> stops_;
  std::string text_;
  bool stopped_ = false;
};

}  // namespace kvaudit::serve
