#include "cli/protocol_options.h"

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/kv_options.h"
#include "diagnose/rules.h"
#include "io/out_dir_lock.h"
#include "report/html_report.h"

namespace kvaudit::cli {

void add_protocol_options(CLI::App* cmd, diagnose::ProtocolOptions& o, bool audit) {
  auto& a = o.eval;
  cmd->add_option("--model", a.model, kModelHelp)->required();
  cmd->add_option("--out", a.out, "output directory (report.json, report.html, samples.jsonl; rerun to resume; one run at a "
                                    "time: a second run on the same --out stops with exit 2)")
      ->required();
  auto* kv = cmd->add_option("--kv", o.target,
                             audit ? "the KV scheme to audit (SPEC.md §3)"
                                         : "the scheme diagnosed: the held-out target, the phase transition's family, "
                                           "the basis of the prescription and the geometry (default int3:tensor:sym)")
                 ->check(kNonEmpty);
  auto* policy = cmd->add_option("--kv-policy", o.target_policy,
                                 "a per-layer policy file to audit instead of --kv (e.g. an earlier audit's policy.json)")
                     ->check(kNonEmpty);
  kv->excludes(policy);
  policy->excludes(kv);
  // audit needs one of the two: run_protocol says so.
  cmd->add_option("--calib", o.calib, "calibration prompts BENCH[:N] (default custom:20, the first N)")->check(kNonEmpty);
  cmd->add_option("--heldout", o.heldout, "held-out prompts BENCH[:N] (default advbench:200, a --seed subset)")
      ->check(kNonEmpty);
  cmd->add_option("--phase-bits", o.phase_bits,
                  "phase transition: the target's int/kivi/nuq family at these bit-widths on the held-out prompts "
                  "(default 8,6,5,4,3,2; none = off)")
      ->check(kNonEmpty);
  cmd->add_option("--subspace-k", o.subspace_k, "safety subspace dimension (default 4)")->check(kPositiveInt);
  cmd->add_option("--geometry-pairs", o.geometry_pairs, "harmful/harmless pairs for the geometry (default 16)")
      ->check(kPositiveCount);
  cmd->add_option("--judge", a.judge, "substring:paper (default), substring:jbb, substring:gcg, prefix:xstest, "
                                      "model:PATH[:wildguard|:llamaguard3]");
  cmd->add_option("--data", a.data, "datasets directory (default $KVAUDIT_DATA, else ../shared/datasets)");
  cmd->add_option("--seed", a.seed, "seed of the held-out subset (default 0)")->check(kCount);
  cmd->add_option("--max-new-tokens", a.max_new_tokens, "default 256")->check(kPositiveInt);
  cmd->add_flag("--full-responses", a.full_responses, "no early stop: generate every response to a stop id or --max-new-tokens");
  add_batch_size_option(cmd, a.batch_size);
  add_kv_storage_options(cmd, a.kv_storage);
  cmd->add_option("--chunk", a.chunk, "requests per samples.jsonl flush (default 4 x batch size)")->check(kPositiveCount);
  if (audit) {
    cmd->add_option("--text", a.text, "perplexity and KL of the target and every candidate on this text");
    cmd->add_option("--ppl-windows", a.ppl_windows, "with --text: score only the first N windows (0 = all)")->check(kCount);
  }
  auto* system = cmd->add_option("--system", a.system, "system message (\"\": an empty system turn; left out, the chat template's default)");
  cmd->add_flag("--raw", a.raw, "no chat template: the prompt text as is (so no --system)")->excludes(system);
  cmd->add_option("--device", a.device, "cpu|cuda (default: cuda when built with it and a GPU is present)");
  add_threads_option(cmd, a.threads);
  cmd->add_flag("--random-weights", a.random_weights, "config.json only: deterministic random weights");
  cmd->add_flag("--quiet", a.quiet, "no progress output");
  cmd->add_flag("--json", a.json, "print report.json instead of the summary");
}

void run_protocol_command(const diagnose::ProtocolOptions& o) {
  const io::OutDirLock lock(o.eval.out);  // one writer per --out, held until report.html is written
  const auto r = diagnose::run_protocol(o, [&](const std::string& stage) {
    if (!o.eval.quiet) std::fprintf(stderr, "== %s\n", stage.c_str());
  });
  const std::string html = (std::filesystem::path(o.eval.out) / "report.html").string();
  report::write_report_html(html, nlohmann::json(r.report), r.samples);
  if (o.eval.json) {
    std::printf("%s\n", r.report.dump(2).c_str());
    return;
  }
  std::printf("finding: %s\n", r.report.value("finding", std::string()).c_str());
  if (const auto& mode = r.report.value("failure_mode", nlohmann::ordered_json()); mode.is_string())
    std::printf("failure mode: %s\n", mode.get<std::string>().c_str());
  else if (!r.report.value("diagnosed", true))
    std::printf("failure mode: not diagnosed\n");
  if (o.verify) {
    const auto& chosen = r.report["chosen"];
    std::printf("chosen plan: %s\n", chosen.is_null() ? "none" : chosen.get<std::string>().c_str());
    if (r.policy) std::printf("policy: %s\n", (std::filesystem::path(o.eval.out) / "policy.json").string().c_str());
  }
  std::printf("report: %s\n", html.c_str());
}

}  // namespace kvaudit::cli
