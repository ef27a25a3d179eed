// One writer per output directory: every command that writes results into --out holds an exclusive,
// non-blocking flock(2) on <out>/.lock for its whole run, so two runs can never interleave samples
// in one samples.jsonl or overwrite each other's results.json / report.json. The kernel drops the
// lock when the process exits, however it exits (a SIGKILLed run leaves no stale lock).
//   const io::OutDirLock lock(a.out);  // UsageError when another kvaudit holds it
#pragma once
#include <string>

namespace kvaudit::io {

class OutDirLock {
 public:
  // Creates `dir` (and parents) and <dir>/.lock if needed, then takes the lock. Throws UsageError
  // naming the directory when another process holds it, or when it cannot be created or opened.
  // A directory this lock created and nothing else wrote into (the run was refused) is removed on
  // release, so a refused command leaves no empty --out behind.
  explicit OutDirLock(const std::string& dir);
  ~OutDirLock();
  OutDirLock(const OutDirLock&) = delete;
  OutDirLock& operator=(const OutDirLock&) = delete;

  const std::string& path() const { return path_; }  // <dir>/.lock

 private:
  std::string dir_, path_;
  int fd_ = -1;
  bool created_ = false;  // dir_ did not exist before
};

}  // namespace kvaudit::io
