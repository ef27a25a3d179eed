// Will the weights fit? Checked from the tensor shapes before anything is allocated, so a model
// too large for the machine stops with a UsageError (what it needs, what there is, what to do)
// instead of being killed by the kernel's OOM killer halfway through the load.
//   check_weights_fit(config, arch, "model-dir");  // throws UsageError when they do not fit
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/arch.h"
#include "model/config.h"

namespace kvaudit::model {

// Bytes of the fp32 weights weight_parts(c, a) lists (4 per element; lm_head only when untied).
int64_t weights_bytes(const ModelConfig& c, const ArchSpec& a);

struct AvailableMemory {
  int64_t bytes = 0;
  std::string source;  // how it was measured, for the message
};

// MemAvailable of a /proc/meminfo text in bytes; nullopt when the line is missing or malformed.
std::optional<int64_t> parse_meminfo_available(std::string_view meminfo);
// A cgroup v2 limit's headroom: memory.max - memory.current (0 when over); nullopt when memory.max
// is "max" (no limit) or either text is malformed.
std::optional<int64_t> cgroup_headroom(std::string_view memory_max, std::string_view memory_current);

// The smaller of MemAvailable (/proc/meminfo) and the cgroup's memory.max - memory.current
// (/sys/fs/cgroup, when a limit is set); nullopt when neither can be read (then nothing is checked).
// $KVAUDIT_MEM_AVAILABLE (bytes) replaces the measurement: the tests' hook, and a way to override
// a reading that is wrong for this machine.
std::optional<AvailableMemory> available_memory();

// Throws UsageError naming `source` when weights_bytes(c, a) exceeds available_memory().
void check_weights_fit(const ModelConfig& c, const ArchSpec& a, const std::string& source);
// The same for weights held as stored (model/weight.h): they need `file_bytes`, the bytes of the
// mapped weight files, not 4 per parameter.
void check_mapped_weights_fit(int64_t file_bytes, const std::string& source);

}  // namespace kvaudit::model
