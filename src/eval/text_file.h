// Whole-file reads for the dataset loaders.
#pragma once
#include <string>

namespace kvaudit::eval {

// The file's bytes, unchanged. UsageError naming the path when it is missing or unreadable.
std::string read_text_file(const std::string& path);

}  // namespace kvaudit::eval
