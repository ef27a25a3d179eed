#include "eval/jsonl_log.h"

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"

namespace kvaudit::eval {
namespace {

// File names need not be UTF-8; they are kept as they are, but shown with U+FFFD.
std::string shown(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

std::string jsonl_line(const nlohmann::json& j) { return shown(j) + "\n"; }

JsonlLog read_jsonl_log(const std::string& path, const nlohmann::json& header, std::string_view run) {
  JsonlLog log;
  if (!std::filesystem::exists(path)) return log;
  const std::string bytes = io::read_file(path);
  size_t pos = 0, line_no = 0;
  while (pos < bytes.size()) {
    const size_t nl = bytes.find('\n', pos);
    ++line_no;
    if (nl == std::string::npos) break;  // killed mid-write: the partial line is redone
    std::string where = path + ":" + std::to_string(line_no);
    nlohmann::json j = nlohmann::json::parse(bytes.substr(pos, nl - pos), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) usage_error("{}: not a JSON object", where);
    if (line_no == 1) {
      if (shown(j) != shown(header))  // as written: a file name that is not UTF-8 is stored with U+FFFD
        usage_error("{} was written by a different {} run ({}, this run is {}); give this run another --out", path, run,
                    shown(j), shown(header));
      log.has_header = true;
    } else {
      log.lines.emplace_back(std::move(where), std::move(j));
    }
    pos = nl + 1;
    log.valid_bytes = pos;
  }
  return log;
}

}  // namespace kvaudit::eval
