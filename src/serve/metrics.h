// /metrics of `kvaudit serve`: request counts by path and status, and the scheduler's gauges and
// counters, in the Prometheus text exposition format (version 0.0.4).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "serve/scheduler.h"

namespace kvaudit::serve {

// The served KV plan as the API describes it.
struct ServedKv {
  std::string plan;         // the policy's canonical name, e.g. "int2:token:asym;layers[1,7]=fp16"
  std::string storage;      // simulated | packed
  std::string compat;       // none | paper
  std::string policy_file;  // --kv-policy, "" when not given
};

class Metrics {
 public:
  // One answered request; paths other than the API's are counted as "other".
  void count(const std::string& path, int status);
  std::string prometheus(const SchedulerStats& s, const ServedKv& kv, const std::string& model) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // (path, status) -> count
};

}  // namespace kvaudit::serve
