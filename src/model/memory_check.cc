#include "model/memory_check.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "model/weight_parts.h"

namespace kvaudit::model {

namespace {

// Whole-file read of a small kernel file; nullopt when it cannot be opened.
std::optional<std::string> read_small_file(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A whole non-negative decimal integer (surrounding whitespace allowed).
std::optional<int64_t> parse_int(std::string_view s) {
  s = trim(s);
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

std::string gib(int64_t bytes) { return fmt::format("{:.1f} GiB", double(bytes) / double(int64_t(1) << 30)); }

}  // namespace

int64_t weights_bytes(const ModelConfig& c, const ArchSpec& a) {
  Weights shapes_only;  // weight_parts only points into it; nothing is allocated but the layer list
  int64_t n = 0;
  for (const PartRef& p : weight_parts(c, a, shapes_only)) {
    int64_t e = 1;
    for (int64_t d : p.shape) e *= d;
    n += e;
  }
  return n * int64_t(sizeof(float));
}

std::optional<int64_t> parse_meminfo_available(std::string_view meminfo) {
  // "MemAvailable:   18138312 kB"
  constexpr std::string_view kKey = "MemAvailable:";
  size_t pos = 0;
  while (pos < meminfo.size()) {
    size_t nl = meminfo.find('\n', pos);
    if (nl == std::string_view::npos) nl = meminfo.size();
    std::string_view line = meminfo.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.substr(0, kKey.size()) != kKey) continue;
    line = trim(line.substr(kKey.size()));
    if (line.size() < 2 || line.substr(line.size() - 2) != "kB") return std::nullopt;
    const auto kb = parse_int(line.substr(0, line.size() - 2));
    if (!kb) return std::nullopt;
    return *kb * 1024;
  }
  return std::nullopt;
}

std::optional<int64_t> cgroup_headroom(std::string_view memory_max, std::string_view memory_current) {
  if (trim(memory_max) == "max") return std::nullopt;
  const auto max = parse_int(memory_max), cur = parse_int(memory_current);
  if (!max || !cur) return std::nullopt;
  return std::max<int64_t>(*max - *cur, 0);
}

std::optional<AvailableMemory> available_memory() {
  if (const char* fake = std::getenv("KVAUDIT_MEM_AVAILABLE")) {
    const auto v = parse_int(fake);
    if (!v) usage_error("$KVAUDIT_MEM_AVAILABLE='{}': expected a number of bytes", fake);
    return AvailableMemory{*v, "$KVAUDIT_MEM_AVAILABLE"};
  }
  std::optional<AvailableMemory> best;
  if (const auto meminfo = read_small_file("/proc/meminfo"))
    if (const auto v = parse_meminfo_available(*meminfo)) best = AvailableMemory{*v, "MemAvailable in /proc/meminfo"};
  const auto max = read_small_file("/sys/fs/cgroup/memory.max");
  const auto cur = read_small_file("/sys/fs/cgroup/memory.current");
  if (max && cur)
    if (const auto v = cgroup_headroom(*max, *cur); v && (!best || *v < best->bytes))
      best = AvailableMemory{*v, "the cgroup's memory.max - memory.current (/sys/fs/cgroup)"};
  return best;
}

void check_weights_fit(const ModelConfig& c, const ArchSpec& a, const std::string& source) {
  const auto avail = available_memory();
  if (!avail) return;  // nothing to compare with: the kernel decides, as before
  const int64_t need = weights_bytes(c, a);
  if (need <= avail->bytes) return;
  const int64_t n_params = need / int64_t(sizeof(float));
  usage_error(
      "{}: the model does not fit in memory: its weights in fp32 need {} ({:.2f} B parameters x 4 bytes) and {} is "
      "available ({}). Weights are held in fp32 only when asked for (--fp32-weights, or --random-weights without "
      "--weights-type); leave that out to keep them in their stored encoding (a Q4 GGUF takes ~0.6 bytes per "
      "parameter), use a model with fewer parameters (at most about {:.2f} B in fp32 here), or run where more "
      "memory is free",
      source, gib(need), double(n_params) / 1e9, gib(avail->bytes), avail->source,
      double(avail->bytes) / 4.0 / 1e9);
}

}  // namespace kvaudit::model

namespace kvaudit::model {

void check_mapped_weights_fit(int64_t file_bytes, const std::string& source) {
  const auto avail = available_memory();
  if (!avail || file_bytes <= avail->bytes) return;
  usage_error(
      "{}: the model does not fit in memory: its weights need {} as stored in the file (kvaudit reads them "
      "memory-mapped, in the file's encoding) and {} is available ({}). Use a smaller model or a smaller "
      "quantization of it, or run where more memory is free (close other jobs, raise the container's memory limit)",
      source, gib(file_bytes), gib(avail->bytes), avail->source);
}

}  // namespace kvaudit::model
