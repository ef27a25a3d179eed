// Whole-file reads and crash-safe whole-file writes (SPEC.md §6: outputs are written atomically).
#pragma once
#include <string>
#include <string_view>

namespace kvaudit::io {

// Writes bytes to a temporary file in the same directory, fsyncs it and renames it over path,
// so readers see either the old or the new file, never a partial one. Throws UsageError naming
// the path when the directory is missing or not writable; a failed write (disk full, file-size
// limit: errno, not SIGXFSZ, once the signal is ignored as cli/main.cc does) throws
// std::runtime_error naming the path and saying the previous file is left intact.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Reads the whole file. Throws UsageError naming the path when it is missing or unreadable.
std::string read_file(const std::string& path);

}  // namespace kvaudit::io
