#include "eval/text_file.h"

#include <fstream>
#include <iterator>

#include "core/error.h"

namespace kvaudit::eval {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) usage_error("cannot read '{}'", path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) usage_error("error while reading '{}'", path);
  return bytes;
}

}  // namespace kvaudit::eval
