#pragma once
namespace kvaudit {
inline constexpr const char* kVersion = KVAUDIT_VERSION;
// Source tree root, used to find ../shared/datasets when neither --data nor $KVAUDIT_DATA is set.
inline constexpr const char* kSourceDir = KVAUDIT_SOURCE_DIR;
}  // namespace kvaudit
