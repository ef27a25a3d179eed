// The log of a resumable run (`ppl --out`, `screen --out`): a header line naming the run, then one
// JSON object per finished piece of work, each appended with one write as it finishes
// (SamplesWriter::append_line). A rerun reads the log back and does only what it lacks; a last line
// without its '\n' (a killed writer) is redone.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::eval {

struct JsonlLog {
  std::vector<std::pair<std::string, nlohmann::json>> lines;  // after the header: ("path:line", object)
  uint64_t valid_bytes = 0;  // header and complete lines; a torn last line is redone
  bool has_header = false;
};

// Reads `path` (a missing file is an empty log). UsageError naming the file and line when a line is
// not a JSON object, and naming the file when its first line is not `header` (another `run` wrote
// it: give this run another --out).
JsonlLog read_jsonl_log(const std::string& path, const nlohmann::json& header, std::string_view run);

// One JSON object and '\n', as the header is compared (a file name that is not UTF-8 shown with U+FFFD).
std::string jsonl_line(const nlohmann::json& j);

}  // namespace kvaudit::eval
