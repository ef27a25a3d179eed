// The flags `diagnose` and `audit` share (SPEC.md §5, §7), and how they print.
#pragma once
#include <CLI/CLI.hpp>

#include "diagnose/protocol.h"

namespace kvaudit::cli {

// Adds --model, --out, --kv, --calib, --heldout, the judge, generation and device flags; audit: also
// --text and --ppl-windows (perplexity is measured in verification, which diagnose does not run).
void add_protocol_options(CLI::App* cmd, diagnose::ProtocolOptions& o, bool audit);

// Runs the protocol with stage lines on stderr (unless --quiet), writes report.html beside
// report.json, and prints the finding, the chosen plan and where the report is (or report.json
// with --json).
void run_protocol_command(const diagnose::ProtocolOptions& o);

}  // namespace kvaudit::cli
