// JSON-lines files that a run appends to and a rerun reads back (samples.jsonl, `ppl --out`'s and
// `screen --out`'s logs): one JSON object per line, each appended with one write as its work
// finishes (SamplesWriter::append_line), so a killed run leaves at most a last line without its
// '\n', which a rerun drops and overwrites.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::eval {

struct JsonlLines {
  std::vector<std::pair<std::string, nlohmann::json>> lines;  // ("path:line", object), complete lines only
  uint64_t valid_bytes = 0;  // the complete lines' bytes
  bool dropped_partial_tail = false;  // a last line without '\n' (a killed writer) was left out
};

// The complete lines of `path` (a missing file has none). UsageError "path:line: not a <what> record
// (...)" for a line that is not a JSON object.
JsonlLines read_jsonl_lines(const std::string& path, std::string_view what);

// A log whose first line is a header naming the run.
struct JsonlLog {
  std::vector<std::pair<std::string, nlohmann::json>> lines;  // after the header
  uint64_t valid_bytes = 0;  // header and complete lines; a torn last line is redone
  bool has_header = false;
};

// Reads `path` as read_jsonl_lines does; UsageError naming the file when its first line is not
// `header` (another `run` wrote it: give this run another --out).
JsonlLog read_jsonl_log(const std::string& path, const nlohmann::json& header, std::string_view run);

// True when `path` is missing, holds no complete line, or its first line is `header`: whether
// read_jsonl_log would accept it.
bool jsonl_log_is_for(const std::string& path, const nlohmann::json& header);

// One JSON object and '\n', as the header is compared (a file name that is not UTF-8 shown with U+FFFD).
std::string jsonl_line(const nlohmann::json& j);

}  // namespace kvaudit::eval
