// What every timed bench records beside a run: the machine's 1-minute load average and the
// process's CPU time (the steadier figure on a shared machine).
#pragma once
#include <time.h>

#include <fstream>

namespace kvaudit::bench {

// /proc/loadavg's first field; -1 when unreadable.
inline double load_average_1min() {
  std::ifstream f("/proc/loadavg");
  double v = -1;
  f >> v;
  return v;
}

// CPU seconds of every thread of this process.
inline double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace kvaudit::bench
