#include "eval/progress.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace kvaudit::eval {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<long long>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string format_progress(const std::string& label, const std::string& unit, size_t done,
                            size_t total, double elapsed_s, bool tty, size_t bar_width, size_t resumed) {
  const double frac = total == 0 ? 1.0 : double(std::min(done, total)) / double(total);
  const bool started = done > resumed && elapsed_s > 0;
  const double rate = started ? double(done - resumed) / elapsed_s : 0;
  const std::string rate_s = started ? fmt::format("{:.2g} {}/s", rate, unit) : "- " + unit + "/s";
  const std::string eta = started ? format_duration(double(total - std::min(done, total)) / rate) : "-";
  const int percent = int(std::floor(frac * 100));
  if (!tty)
    return fmt::format("{}: {}/{} ({}%), {}, ETA {}", label, done, total, percent, rate_s, eta);
  const size_t filled = size_t(std::floor(frac * double(bar_width)));
  return fmt::format("{} [{}{}] {:>{}}/{} {:>3}% {} ETA {}", label, std::string(filled, '#'),
                     std::string(bar_width - filled, ' '), done, std::to_string(total).size(), total,
                     percent, rate_s, eta);
}

Progress::Progress(std::FILE* sink, bool tty, std::string label, size_t total, std::string unit,
                   double plain_interval_s)
    : sink_(sink), tty_(tty), label_(std::move(label)), unit_(std::move(unit)), total_(total),
      plain_interval_s_(plain_interval_s), start_(std::chrono::steady_clock::now()) {}

void Progress::update(size_t done) {
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  update(done, t);
}

void Progress::update(size_t done, double elapsed_s) {
  last_done_ = done;
  last_elapsed_ = elapsed_s;
  // A TTY redraws at most ~10 times a second; plain output every plain_interval_s.
  const double interval = tty_ ? 0.1 : plain_interval_s_;
  if (elapsed_s - last_emit_s_ < interval) return;
  last_emit_s_ = elapsed_s;
  emit(done, elapsed_s);
}

void Progress::finish() {
  if (last_emitted_done_ != last_done_) emit(last_done_, last_elapsed_);
  if (sink_ && tty_) std::fputc('\n', sink_);
  if (sink_) std::fflush(sink_);
}

void Progress::emit(size_t done, double elapsed_s) {
  last_emitted_done_ = done;
  if (!sink_) return;
  const std::string line = format_progress(label_, unit_, done, total_, elapsed_s, tty_, kProgressBarWidth, resumed_);
  if (tty_)
    std::fprintf(sink_, "\r\033[K%s", line.c_str());  // return, clear the line, redraw
  else
    std::fprintf(sink_, "%s\n", line.c_str());
  std::fflush(sink_);
}

}  // namespace kvaudit::eval
