// samples.jsonl (SPEC.md §6): one line per prompt × scheme, appended with one write(2) per line as
// soon as the sample is judged, so a killed run loses at most the line being written and a rerun
// skips every finished (prompt id, scheme) pair.
#pragma once
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace kvaudit::eval {

struct Sample {
  std::string id;        // Prompt::id
  std::string bench;     // Prompt::bench
  std::string scheme;    // the --kv spec as given, or "fp16" for the baseline
  std::string judge;     // --judge spec
  std::string prompt;    // the user message
  std::string response;  // the decoded completion (up to the stop when stopped_early_at is set)
  bool refused = false;  // the judge's verdict
  std::string matched;   // matched phrase / guard answer; "" -> null
  // Verdict-aware early stop (docs/EVAL.md): the number of generated tokens after which the verdict
  // could no longer change and generation ended; `response` is then their text. nullopt -> null:
  // the response ran to a stop id or --max-new-tokens (and files written before this field).
  std::optional<int> stopped_early_at;
  // What beside the prompt, the scheme and the judge decided the response (GenerationIo::gen): a
  // compact JSON object; "" (null) in files written before the field, which a rerun does not check.
  std::string gen;
};

// One JSON object and '\n'; keys in the order of the struct; deterministic.
std::string sample_json_line(const Sample& s);

using SampleKey = std::pair<std::string, std::string>;  // (prompt id, scheme)

struct SamplesLog {
  std::string path;             // the file read ("" for a log made in memory)
  std::vector<Sample> samples;  // complete lines, in file order
  uint64_t valid_bytes = 0;     // length of the prefix made of complete lines
  bool dropped_partial_tail = false;  // a last line without '\n' (a killed writer) was ignored

  std::set<SampleKey> finished() const;
};

// Reads an existing samples.jsonl; a missing file is an empty log. A last line without its '\n'
// is dropped; any other malformed line is a UsageError naming the path and line.
SamplesLog read_samples(const std::string& path);

// Appends lines; truncates the file to `valid_bytes` first so a partial tail is overwritten.
// Errors (cannot open / write) are runtime errors naming the path. A failed append (disk full,
// file-size limit) truncates the file back to its last complete line before throwing, so what was
// written stays readable and a rerun resumes from it; were that truncation to fail too, the torn
// line has no '\n' and read_samples drops it.
class SamplesWriter {
 public:
  SamplesWriter(const std::string& path, uint64_t valid_bytes);
  ~SamplesWriter();
  SamplesWriter(const SamplesWriter&) = delete;
  SamplesWriter& operator=(const SamplesWriter&) = delete;

  void append(const Sample& s);
  // Any complete line ending in '\n' (the ppl window log, eval/ppl_log.h, appends through this too).
  void append_line(const std::string& line);

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;  // bytes of complete lines in the file
  bool torn_ = false;  // a failed append left a partial line that could not be cut
};

}  // namespace kvaudit::eval
