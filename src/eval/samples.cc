#include "eval/samples.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/jsonl_log.h"

namespace kvaudit::eval {

std::string sample_json_line(const Sample& s) {
  nlohmann::ordered_json j;
  j["id"] = s.id;
  j["bench"] = s.bench;
  j["scheme"] = s.scheme;
  j["judge"] = s.judge;
  j["prompt"] = s.prompt;
  j["response"] = s.response;
  j["refused"] = s.refused;
  j["matched"] = s.matched.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.matched);
  j["stopped_early_at"] = s.stopped_early_at ? nlohmann::ordered_json(*s.stopped_early_at) : nlohmann::ordered_json(nullptr);
  j["gen"] = s.gen.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json::parse(s.gen);
  // Invalid UTF-8 in a response (a token split mid-character) is replaced, not fatal.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::set<SampleKey> SamplesLog::finished() const {
  std::set<SampleKey> keys;
  for (const auto& s : samples) keys.emplace(s.id, s.scheme);
  return keys;
}

namespace {
std::string string_field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string())
    usage_error("{}: missing string field '{}'", where, key);
  return j[key].get<std::string>();
}
}  // namespace

SamplesLog read_samples(const std::string& path) {
  SamplesLog log;
  log.path = path;
  const JsonlLines lines = read_jsonl_lines(path, "samples.jsonl");
  log.valid_bytes = lines.valid_bytes;
  log.dropped_partial_tail = lines.dropped_partial_tail;
  for (const auto& [where, j] : lines.lines) {
    Sample s;
    s.id = string_field(j, "id", where);
    s.bench = string_field(j, "bench", where);
    s.scheme = string_field(j, "scheme", where);
    s.judge = string_field(j, "judge", where);
    s.prompt = string_field(j, "prompt", where);
    s.response = string_field(j, "response", where);
    if (!j.contains("refused") || !j["refused"].is_boolean())
      usage_error("{}: missing boolean field 'refused'", where);
    s.refused = j["refused"].get<bool>();
    if (j.contains("matched") && j["matched"].is_string()) s.matched = j["matched"].get<std::string>();
    // Absent in files written before early stop existed: those responses ran full length.
    if (j.contains("stopped_early_at") && !j["stopped_early_at"].is_null()) {
      if (!j["stopped_early_at"].is_number_integer() || j["stopped_early_at"].get<int64_t>() < 1)
        usage_error("{}: 'stopped_early_at' must be a positive integer or null", where);
      s.stopped_early_at = j["stopped_early_at"].get<int>();
    }
    if (j.contains("gen") && !j["gen"].is_null()) {
      if (!j["gen"].is_object()) usage_error("{}: 'gen' must be an object or null", where);
      s.gen = j["gen"].dump();
    }
    log.samples.push_back(std::move(s));
  }
  return log;
}

SamplesWriter::SamplesWriter(const std::string& path, uint64_t valid_bytes) : path_(path), size_(valid_bytes) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  if (fd_ < 0) runtime_error("cannot open '{}' for appending: {}", path, std::strerror(errno));
  if (::ftruncate(fd_, off_t(valid_bytes)) != 0 || ::lseek(fd_, 0, SEEK_END) < 0) {
    const int err = errno;
    ::close(fd_);
    runtime_error("cannot truncate '{}' to {} bytes: {}", path, valid_bytes, std::strerror(err));
  }
}

SamplesWriter::~SamplesWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void SamplesWriter::append(const Sample& s) { append_line(sample_json_line(s)); }

void SamplesWriter::append_line(const std::string& line) {
  if (torn_) runtime_error("cannot append to '{}': an earlier append failed and its torn line could not be removed", path_);
  size_t done = 0;
  while (done < line.size()) {  // write(2) may be partial; the kernel holds what it accepted
    const ssize_t w = ::write(fd_, line.data() + done, line.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      // Disk full or past the file-size limit: cut the part of this line that did reach the file,
      // so the file ends at its last complete line (shrinking never needs space or crosses a limit).
      const int err = errno;
      if (::ftruncate(fd_, off_t(size_)) == 0 && ::lseek(fd_, 0, SEEK_END) >= 0)
        runtime_error("cannot append to '{}': {}; the file is cut back to its last complete line ({} bytes, "
                      "every earlier sample intact): free space and rerun to resume",
                      path_, std::strerror(err), size_);
      torn_ = true;
      runtime_error("cannot append to '{}': {}; its last line is torn and will be ignored and overwritten when "
                    "the run resumes (every earlier sample intact)",
                    path_, std::strerror(err));
    }
    done += size_t(w);
  }
  size_ += line.size();
}

}  // namespace kvaudit::eval
