// `kvaudit ppl --out DIR`: DIR/ppl_windows.jsonl holds a header line naming the run (text, token
// count, window, stride, score_from, schemes) and one line per finished window with its per-scheme
// sums (eval/ppl_runner.h PplWindowSums), appended as each window finishes. A rerun of the same
// command reads it back and computes only the windows it lacks (docs/EVAL.md "Perplexity").
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/ppl_runner.h"

namespace kvaudit::eval {

struct PplLog {
  std::map<size_t, PplWindowSums> windows;  // by window index
  uint64_t valid_bytes = 0;                 // header and complete lines; a torn last line is redone
  bool has_header = false;
};

// Reads `path` (a missing file is an empty log). UsageError naming the file and line when a line is
// malformed or a window's sums are not one per scheme, and naming the file when its header is not
// `header` (a different ppl run wrote it: give another --out).
PplLog read_ppl_log(const std::string& path, const nlohmann::json& header);

// The header line and a window's line, each one JSON object and '\n'.
std::string ppl_log_header_line(const nlohmann::json& header);
std::string ppl_window_line(const PplWindowSums& w);

// The header naming a run: the model, the text, its token count and the SHA-256 of its token ids
// (a text edited in place, or another file at the same relative path, is another run), the windows,
// the schemes and the device (the CPU's and the GPU's last bits differ, so their windows never mix
// in one total).
nlohmann::json ppl_log_header(const std::string& model, const std::string& text, const std::vector<int>& tokens,
                              const PplOptions& opt, const std::vector<SchemeRun>& schemes, engine::Device device);

// The windows run_perplexity scores (opt.max_windows applied): a progress bar's total is this x schemes.
size_t ppl_window_count(size_t n_tokens, const PplOptions& opt);
// UsageError naming `path` when its n_tokens give no window to score (an empty or one-token text):
// perplexity was asked for and would be null.
void require_ppl_windows(size_t n_tokens, const PplOptions& opt, const std::string& path);

// run_perplexity resumable through the log at `path`: windows it holds are read back, each newly
// finished window is appended (after the header, written first), so a killed run redoes at most one
// window and its results equal an uninterrupted run's bit for bit. A log of another run (its header
// differs) is a UsageError (`ppl --out`), or with `replace_other_run` is started afresh (eval and
// audit --text: adding a scheme to an --out recomputes its perplexity rather than stopping).
std::vector<PplResult> run_perplexity_logged(engine::Backend& backend, const std::vector<int>& tokens,
                                             const std::vector<SchemeRun>& schemes, const PplOptions& opt,
                                             Progress* progress, const std::string& path,
                                             const nlohmann::json& header, bool replace_other_run = false);

}  // namespace kvaudit::eval
