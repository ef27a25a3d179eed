#include "io/out_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace kvaudit::io {

OutDirLock::OutDirLock(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  dir_ = dir;
  created_ = !fs::exists(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) usage_error("cannot create output directory {}: {}", dir, ec.message());
  path_ = (fs::path(dir) / ".lock").string();
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) usage_error("cannot open {} to lock output directory {}: {}", path_, dir, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      usage_error("output directory {} is in use: another kvaudit is writing it (it holds {}); wait for that run "
                  "to finish or give this one another --out",
                  dir, path_);
    usage_error("cannot lock output directory {} ({}): {}", dir, path_, std::strerror(err));
  }
}

OutDirLock::~OutDirLock() {
  namespace fs = std::filesystem;
  std::error_code ec;
  // Still holding the lock, so no other kvaudit is writing here: a directory of ours that holds
  // only the lock file goes (a run that wrote anything keeps it).
  bool only_lock = created_ && fd_ >= 0;
  if (only_lock)  // increment(ec), not ++: a destructor must not throw
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().filename() != ".lock") only_lock = false;
  if (only_lock && !ec) ::unlink(path_.c_str());
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the lock
  if (only_lock && !ec) fs::remove(dir_, ec);
}

}  // namespace kvaudit::io
