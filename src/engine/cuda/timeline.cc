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
// At exit, so nothing can be thrown: a failure is said on stderr.
void dump() {
  const char* path = std::getenv("KVAUDIT_CUDA_TIMELINE_OUT");
  if (buffer == nullptr) return;
  if (path == nullptr || *path == '\0') {
    std::fprintf(stderr, "timeline: KVAUDIT_CUDA_TIMELINE_OUT is not set; the records are not written\n");
    return;
  }
  std::vector<unsigned char> host(buffer_bytes);
  if (cudaDeviceSynchronize() != cudaSuccess ||
      cudaMemcpy(host.data(), buffer, buffer_bytes, cudaMemcpyDeviceToHost) != cudaSuccess) {
    std::fprintf(stderr, "timeline: the records could not be read back from the device\n");
    return;
  }
  const std::string tmp = std::string(path) + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  bool ok = f != nullptr;
  if (ok) {
    std::fprintf(f, "KVTL1 %zu\n", files().size());
    for (const File& file : files()) std::fprintf(f, "%s\n", file.name);
    ok = std::fwrite(host.data(), 1, host.size(), f) == host.size();
    ok = std::fclose(f) == 0 && ok && std::rename(tmp.c_str(), path) == 0;
  }
  if (ok) std::fprintf(stderr, "timeline: %zu bytes to %s\n", host.size(), path);
  else std::fprintf(stderr, "timeline: could not write %s\n", path);
}

}  // namespace

void timeline_register(void (*bind)(void*, unsigned), const char* file) { files().push_back({bind, file}); }

void timeline_start() {
  if (files().empty() || buffer != nullptr) return;
  // records kept per SM (the last ones): 16,384 (100 MB) kept the last several batch-1 decode steps
  // of the 8B shape (docs/PERFORMANCE.md)
  unsigned long long per_sm = 16384;
  if (const char* env = std::getenv("KVAUDIT_CUDA_TIMELINE_PER_SM"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    per_sm = std::strtoull(env, &end, 10);
    if (end == env || *end != '\0' || per_sm < 1 || per_sm > (1ull << 24))
      throw_usage(std::string("KVAUDIT_CUDA_TIMELINE_PER_SM: '") + env + "' is not a count from 1 to 16777216");
  }
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
