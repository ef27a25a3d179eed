// Runs a function in a forked child whose writes fail past a file-size limit (RLIMIT_FSIZE with
// SIGXFSZ ignored, so write(2) returns EFBIG as on a full disk instead of the signal killing it),
// and reports how it ended: the tests of "a write that fails leaves the previous file intact".
#pragma once
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <exception>
#include <functional>
#include <string>

#include "core/error.h"

namespace kvaudit::testing {

struct ChildOutcome {
  int code = -1;        // 0: fn returned; 1: it threw std::exception; 2: UsageError; -1: killed
  std::string message;  // what() of the exception
};

inline ChildOutcome run_with_fsize_limit(rlim_t max_file_bytes, const std::function<void()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit lim{max_file_bytes, max_file_bytes};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(3);
    int code = 0;
    std::string msg;
    try {
      fn();
    } catch (const UsageError& e) {
      code = 2;
      msg = e.what();
    } catch (const std::exception& e) {
      code = 1;
      msg = e.what();
    }
    if (!msg.empty() && ::write(fds[1], msg.data(), msg.size()) < 0) code = 4;
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildOutcome out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.message.append(buf, size_t(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace kvaudit::testing
