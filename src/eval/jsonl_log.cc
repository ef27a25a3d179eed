#include "eval/jsonl_log.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"

namespace kvaudit::eval {
namespace {

// File names need not be UTF-8; they are kept as they are, but shown with U+FFFD.
std::string shown(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

std::string jsonl_line(const nlohmann::json& j) { return shown(j) + "\n"; }

JsonlLines read_jsonl_lines(const std::string& path, std::string_view what) {
  JsonlLines out;
  if (!std::filesystem::exists(path)) return out;
  const std::string bytes = io::read_file(path);
  size_t pos = 0, line_no = 0;
  while (pos < bytes.size()) {
    const size_t nl = bytes.find('\n', pos);
    ++line_no;
    if (nl == std::string::npos) {  // killed mid-write: the partial line is redone
      out.dropped_partial_tail = true;
      break;
    }
    std::string where = path + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(bytes.substr(pos, nl - pos));
    } catch (const nlohmann::json::parse_error& e) {
      usage_error("{}: not a {} record ({})", where, what, e.what());
    }
    if (!j.is_object()) usage_error("{}: not a {} record (not a JSON object)", where, what);
    out.lines.emplace_back(std::move(where), std::move(j));
    pos = nl + 1;
    out.valid_bytes = pos;
  }
  return out;
}

bool jsonl_log_is_for(const std::string& path, const nlohmann::json& header) {
  std::ifstream in(path, std::ios::binary);  // the header line only: the caller reads the rest once
  std::string first;
  if (!in || !std::getline(in, first) || in.eof()) return true;  // missing, empty, or no complete line
  const nlohmann::json j = nlohmann::json::parse(first, nullptr, /*allow_exceptions=*/false);
  return !j.is_discarded() && shown(j) == shown(header);
}

JsonlLog read_jsonl_log(const std::string& path, const nlohmann::json& header, std::string_view run) {
  JsonlLines lines = read_jsonl_lines(path, std::string(run) + " log");
  JsonlLog log;
  log.valid_bytes = lines.valid_bytes;
  if (lines.lines.empty()) return log;
  if (shown(lines.lines.front().second) != shown(header))  // as written: non-UTF-8 names stored with U+FFFD
    usage_error("{} was written by a different {} run ({}, this run is {}); give this run another --out", path, run,
                shown(lines.lines.front().second), shown(header));
  log.has_header = true;
  log.lines.assign(std::make_move_iterator(lines.lines.begin() + 1), std::make_move_iterator(lines.lines.end()));
  return log;
}

}  // namespace kvaudit::eval
