#include "eval/ifeval/jsonl.h"

#include <fmt/format.h>

#include "core/error.h"
#include "eval/ifeval/text_rules.h"
#include "io/atomic_file.h"

namespace kvaudit::eval::ifeval {

void for_each_jsonl(const std::string& path,
                    const std::function<void(const std::string& where, size_t line_no, const nlohmann::json&)>& f) {
  const std::string bytes = io::read_file(path);
  size_t line_no = 0;
  for (size_t b = 0; b < bytes.size();) {
    size_t e = bytes.find('\n', b);
    if (e == std::string::npos) e = bytes.size();
    const std::string_view line(bytes.data() + b, e - b);
    b = e + 1;
    ++line_no;
    if (py_strip(line).empty()) continue;
    const std::string where = fmt::format("{}:{}", path, line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& ex) {
      usage_error("{}: not valid JSON ({})", where, ex.what());
    }
    f(where, line_no, j);
  }
}

}  // namespace kvaudit::eval::ifeval
