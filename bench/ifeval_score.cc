// IFEval scorer throughput (SPEC.md §4): responses/s scoring the agreement fixture's responses
// (real generations and edge cases, tests/fixtures/ifeval/agreement.jsonl.gz) strict and loose,
// one thread, best of 5; the dataset load (25 checker kinds built, regexes compiled) timed apart.
//   bench_ifeval_score INPUT_DATA.jsonl FIXTURE.jsonl.gz
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_clock.h"
#include "eval/ifeval/scorer.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s INPUT_DATA.jsonl FIXTURE.jsonl.gz\n", argv[0]);
    return 2;
  }
  namespace ie = kvaudit::eval::ifeval;
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  const auto items = ie::load_items(argv[1]);
  const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
  std::map<int64_t, const ie::Item*> by_key;
  for (const auto& it : items) by_key[it.key] = &it;
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen((std::string("gzip -dc '") + argv[2] + "'").c_str(), "r"), ::pclose);
  std::string all;
  char buf[1 << 16];
  for (size_t n; p && (n = std::fread(buf, 1, sizeof buf, p.get())) > 0;) all.append(buf, n);
  std::vector<std::pair<const ie::Item*, std::string>> rs;
  size_t bytes = 0;
  for (size_t b = 0; b < all.size();) {
    size_t e = all.find('\n', b);
    if (e == std::string::npos) e = all.size();
    if (e > b) {
      const auto j = nlohmann::json::parse(all.substr(b, e - b));
      rs.emplace_back(by_key.at(j["key"].get<int64_t>()), j["response"].get<std::string>());
      bytes += rs.back().second.size();
    }
    b = e + 1;
  }
  constexpr int kRepeats = 5;
  double best = 1e30;
  size_t followed = 0;
  const double cpu0 = kvaudit::bench::process_cpu_s();
  for (int r = 0; r < kRepeats; ++r) {
    t0 = clock::now();
    followed = 0;
    for (const auto& [item, response] : rs) followed += ie::score(*item, response).all_loose;
    best = std::min(best, std::chrono::duration<double>(clock::now() - t0).count());
  }
  const double cpu = kvaudit::bench::process_cpu_s() - cpu0;
  std::printf("ifeval scorer: %zu responses (%.1f KB, %zu loose-followed), dataset load %.3f s | best of %d: %.3f s, "
              "%.0f responses/s (1 thread) | CPU %.2f s over %d runs | load average %.2f\n",
              rs.size(), double(bytes) / 1e3, followed, load_s, kRepeats, best, double(rs.size()) / best, cpu, kRepeats,
              kvaudit::bench::load_average_1min());
  return 0;
}
