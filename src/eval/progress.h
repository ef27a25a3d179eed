// Progress reporting (SPEC.md §6: a bar with rate and ETA on a terminal, plain lines otherwise).
// Only cli writes to stderr, so the sink is a std::FILE* that cli hands in; the formatting is
// separate and pure so tests pin it down.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace kvaudit::eval {

// "12:05" / "1:02:03"; negative or non-finite -> "--:--".
std::string format_duration(double seconds);

// TTY: "label [#########           ]  45/120  37%  2.1 prompts/s  ETA 0:35"
// plain: "label: 45/120 (37%), 2.1 prompts/s, ETA 0:35"
// `resumed` of the `done` units came from an earlier run's results: they count as done but not
// into the rate. Before any progress of this run (done == resumed or elapsed == 0) the rate and ETA
// read "-".
constexpr size_t kProgressBarWidth = 24;
std::string format_progress(const std::string& label, const std::string& unit, size_t done,
                            size_t total, double elapsed_s, bool tty, size_t bar_width = kProgressBarWidth,
                            size_t resumed = 0);

class Progress {
 public:
  // sink: where lines go (nullptr: nowhere, e.g. --quiet); tty: redraw one line with '\r'.
  // Plain mode prints at most one line per `plain_interval_s` (plus the final one).
  Progress(std::FILE* sink, bool tty, std::string label, size_t total, std::string unit = "prompts",
           double plain_interval_s = 10.0);

  // n more units were read back from an earlier run (a resume): counted in `done` by the caller's
  // updates, never in the rate.
  void resumed(size_t n) { resumed_ += n; }
  void update(size_t done);                    // uses the steady clock
  void update(size_t done, double elapsed_s);  // explicit time, for tests
  void finish();                               // the final line and a newline on a TTY

 private:
  void emit(size_t done, double elapsed_s);

  std::FILE* sink_;
  bool tty_;
  std::string label_, unit_;
  size_t total_;
  size_t resumed_ = 0;
  double plain_interval_s_;
  std::chrono::steady_clock::time_point start_;
  double last_emit_s_ = -1e300;
  size_t last_done_ = 0;
  size_t last_emitted_done_ = size_t(-1);  // finish() repeats no line already shown
  double last_elapsed_ = 0;
};

}  // namespace kvaudit::eval
