// Shared by the end-to-end tests: where the demo model is cached and whole-file reads.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace kvaudit::testing {

// SmolLM2-135M-Instruct as scripts/fetch-models.sh caches it, or "" when it has not been fetched
// (tests then skip: they never download).
inline std::string demo_model() {
  const char* cache = std::getenv("KVAUDIT_CACHE");
  const char* home = std::getenv("HOME");
  const std::filesystem::path dir =
      cache ? std::filesystem::path(cache) : std::filesystem::path(home ? home : "") / ".cache" / "kvaudit";
  const std::filesystem::path p = dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
  return std::filesystem::exists(p) ? p.string() : "";
}

// A model file of ~/.cache/kvaudit (or $KVAUDIT_CACHE) by name, or "" when it has not been fetched.
inline std::string cached_model(const std::string& file) {
  const char* cache = std::getenv("KVAUDIT_CACHE");
  const char* home = std::getenv("HOME");
  const std::filesystem::path dir =
      cache ? std::filesystem::path(cache) : std::filesystem::path(home ? home : "") / ".cache" / "kvaudit";
  return std::filesystem::exists(dir / file) ? (dir / file).string() : "";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace kvaudit::testing
