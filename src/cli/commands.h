// Each command lives in its own cmd_<name>.cc and adds itself to the app here.
// A command's callback throws; only main.cc catches and maps errors to exit codes.
#pragma once
#include <limits>
#include <string>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "text/utf8.h"

namespace kvaudit::cli {

// A text given on the command line or in a file must be UTF-8: the tokenizer would read U+FFFD where
// it is not, and tokenize something else than what was written (what: the option and file).
inline void require_utf8(const std::string& text, const std::string& what) {
  if (const size_t at = text::utf8_invalid_at(text); at != std::string_view::npos)
    usage_error("{} is not valid UTF-8 (byte {})", what, at);
}

// --model of the commands that load weights (model/memory_check.h checks them before loading).
inline constexpr const char* kModelHelp =
    "HF model directory or .gguf file (weights kept in their stored encoding, f32/f16/bf16 or a GGUF quant type; "
    "a model that does not fit in the free memory stops with exit 2 before loading)";

// Integer options' ranges; CLI11's PositiveNumber names its bound as a double (1.797...e308).
inline const CLI::Range kPositiveInt(1, std::numeric_limits<int>::max());
inline const CLI::Range kNonNegativeInt(0, std::numeric_limits<int>::max());
// For size_t / uint64_t options: CLI11 reads "-5" into them as 2^64 - 5, so the range is checked on
// the text first.
inline const CLI::Range kCount(int64_t(0), std::numeric_limits<int64_t>::max());
inline const CLI::Range kPositiveCount(int64_t(1), std::numeric_limits<int64_t>::max());
// An option given as "" would silently mean its default: refused.
inline const CLI::Validator kNonEmpty(
    [](std::string& s) { return s.empty() ? std::string("is empty (leave the option out for its default)") : std::string(); },
    "NON-EMPTY", "NonEmpty");

// A fraction option's range, its ends open or closed ("[0, 1)", "(0, 1]"); NaN and non-numbers are
// refused (CLI::Range lets NaN through: every comparison with it is false).
inline CLI::Validator fraction_check(bool zero_included, bool one_included) {
  const std::string name = std::string(zero_included ? "[0" : "(0") + ", 1" + (one_included ? "]" : ")");
  return CLI::Validator(
      [=](std::string& v) {
        double x = 0;
        try {
          size_t used = 0;
          x = std::stod(v, &used);
          if (used != v.size()) return std::string("not a number");
        } catch (...) {
          return std::string("not a number");
        }
        const bool ok = (zero_included ? x >= 0 : x > 0) && (one_included ? x <= 1 : x < 1);
        return ok ? std::string() : "must be in " + name;
      },
      name);
}

// --batch-size of the commands that generate: given, 1..65536; left out (0), the backend's
// auto_batch_size.
inline void add_batch_size_option(CLI::App* cmd, int& batch_size) {
  cmd->add_option("--batch-size", batch_size,
                  "sequences per batch (continuous batching); default: 16 on the CPU, up to 512 on a GPU as its "
                  "memory allows")
      ->check(CLI::Range(1, 65536));
}

// --threads of the commands that run the engine: given, 1..4096; left out (0), every core.
inline void add_threads_option(CLI::App* cmd, int& threads) {
  cmd->add_option("--threads", threads, "CPU threads (default: all)")->check(CLI::Range(1, 4096));
}

void add_generate(CLI::App& app);
void add_logits(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_template(CLI::App& app);
void add_kv(CLI::App& app);
void add_eval(CLI::App& app);
void add_sweep(CLI::App& app);
void add_ppl(CLI::App& app);
void add_diagnose(CLI::App& app);
void add_audit(CLI::App& app);
void add_screen(CLI::App& app);
void add_bench(CLI::App& app);
void add_serve(CLI::App& app);
void add_score(CLI::App& app);

}  // namespace kvaudit::cli
