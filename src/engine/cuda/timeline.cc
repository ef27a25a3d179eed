// timeline.h's host half: the registry of files, the buffer, the dump at exit.
#include "engine/cuda/timeline.h"

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/cuda/cuda_check.h"

namespace kvaudit::engine::cuda {
namespace {

struct File {
  void (*bind)(void*, unsigned);
  const char* name;
};
std::vector<File>& files() {
  static std::vector<File> f;
  return f;
}
void* buffer = nullptr;
size_t buffer_bytes = 0;

// The file: "KVTL1", the file count, each file's name (a line), then the header and the rings as the
// device holds them.
void dump() {
  const char* path = std::getenv("KVAUDIT_CUDA_TIMELINE_OUT");
  if (buffer == nullptr || path == nullptr || *path == '\0') return;
  if (cudaDeviceSynchronize() != cudaSuccess) return;
  std::vector<unsigned char> host(buffer_bytes);
  if (cudaMemcpy(host.data(), buffer, buffer_bytes, cudaMemcpyDeviceToHost) != cudaSuccess) return;
  const std::string tmp = std::string(path) + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return;
  std::fprintf(f, "KVTL1 %zu\n", files().size());
  for (const File& file : files()) std::fprintf(f, "%s\n", file.name);
  std::fwrite(host.data(), 1, host.size(), f);
  if (std::fclose(f) == 0) std::rename(tmp.c_str(), path);
  std::fprintf(stderr, "timeline: %zu bytes to %s\n", host.size(), path);
}

}  // namespace

void timeline_register(void (*bind)(void*, unsigned), const char* file) { files().push_back({bind, file}); }

void timeline_start() {
  if (files().empty() || buffer != nullptr) return;
  const char* env = std::getenv("KVAUDIT_CUDA_TIMELINE_PER_SM");
  const unsigned long long per_sm = env != nullptr && *env != '\0' ? std::strtoull(env, nullptr, 10) : 65536;
  buffer_bytes = sizeof(TimelineHeader) + size_t(kTimelineSms) * per_sm * sizeof(TimelineEvent);
  KVAUDIT_CUDA_CHECK(cudaMalloc(&buffer, buffer_bytes));
  KVAUDIT_CUDA_CHECK(cudaMemset(buffer, 0, sizeof(TimelineHeader)));
  KVAUDIT_CUDA_CHECK(cudaMemcpy(static_cast<unsigned char*>(buffer) + offsetof(TimelineHeader, per_sm), &per_sm,
                                sizeof per_sm, cudaMemcpyHostToDevice));
  for (size_t i = 0; i < files().size(); ++i) files()[i].bind(buffer, unsigned(i));
  std::atexit(dump);
  std::fprintf(stderr, "timeline: %zu files, %llu records an SM\n", files().size(), per_sm);
}

}  // namespace kvaudit::engine::cuda
