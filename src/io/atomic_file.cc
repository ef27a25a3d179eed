#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"

namespace kvaudit::io {

namespace {

// Closes the descriptor and removes the temporary file unless released.
struct TempFile {
  int fd = -1;
  std::string path;
  bool keep = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!keep && !path.empty()) ::unlink(path.c_str());
  }
};

// A failed write (disk full, file-size limit): the temporary file goes, `path` is untouched.
[[noreturn]] void write_failed(const std::string& path, const char* step, int err) {
  std::error_code ec;
  runtime_error("writing {} failed ({}: {}); {}", path, step, std::strerror(err),
                std::filesystem::exists(path, ec) ? "the previous file is left intact" : "nothing was written");
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) usage_error("cannot write {}: directory {} does not exist", path, dir.string());

  TempFile tmp;
  std::random_device rd;
  for (int attempt = 0; attempt < 16 && tmp.fd < 0; ++attempt) {
    tmp.path = (dir / fmt::format(".{}.tmp{:08x}", target.filename().string(), rd())).string();
    tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (tmp.fd < 0 && errno != EEXIST) break;
  }
  if (tmp.fd < 0) {
    const std::string why = std::strerror(errno);
    tmp.path.clear();
    usage_error("cannot write {}: {}", path, why);
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(tmp.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      write_failed(path, "write", errno);
    }
    done += size_t(n);
  }
  if (::fsync(tmp.fd) != 0) write_failed(path, "fsync", errno);
  const int closed = ::close(tmp.fd);
  tmp.fd = -1;
  if (closed != 0) write_failed(path, "close", errno);
  if (::rename(tmp.path.c_str(), path.c_str()) != 0)
    usage_error("cannot write {}: rename failed: {}", path, std::strerror(errno));
  tmp.keep = true;
  // The rename itself becomes durable once the directory entry is synced.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) usage_error("cannot read {}: it is a directory", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) usage_error("cannot read {}: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) runtime_error("reading {} failed", path);
  return std::move(ss).str();
}

}  // namespace kvaudit::io
