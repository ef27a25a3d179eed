// Error kinds and how they map to exit codes (SPEC.md §6):
// UsageError -> exit 2 (bad flag, spec, file or model; the message names the input),
// anything else -> exit 1. Only cli/main.cc catches.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace kvaudit {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws UsageError with a formatted message.
template <typename... Args>
[[noreturn]] void usage_error(fmt::format_string<Args...> f, Args&&... args) {
  throw UsageError(fmt::format(f, std::forward<Args>(args)...));
}

// Throws std::runtime_error (exit 1) with a formatted message.
template <typename... Args>
[[noreturn]] void runtime_error(fmt::format_string<Args...> f, Args&&... args) {
  throw std::runtime_error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace kvaudit
