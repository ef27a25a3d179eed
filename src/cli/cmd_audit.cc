// kvaudit audit (SPEC.md §5, §7): baseline, bf16 noise floor and target on the held-out prompts ->
// significance -> diagnose -> candidates -> verification -> the cheapest plan that recovers;
// report.json, report.html, policy.json, samples.jsonl in --out; resumable after a kill.
#include <string>

#include "cli/commands.h"
#include "cli/protocol_options.h"
#include "core/error.h"

namespace kvaudit::cli {

void add_audit(CLI::App& app) {
  auto* cmd = app.add_subcommand("audit", "The whole protocol: does --kv break refusals, why, and the cheapest plan "
                                          "that recovers them (report.json, report.html, policy.json)");
  auto o = std::make_shared<diagnose::ProtocolOptions>();
  o->verify = true;
  add_protocol_options(cmd, *o, true);
  cmd->add_option("--target-recovery", o->target_recovery, "recovery a plan must reach, in (0, 1] (default 0.9)")
      ->check(fraction_check(false, true));
  cmd->add_option("--capability", o->capability,
                  "IFEval prompts (a --seed subset) that check the capability of the baseline, the target and every "
                  "plan that recovers; a plan that loses capability significantly is not chosen (default 100, 0 = off)")
      ->check(kNonNegativeInt);
  cmd->add_option("--capability-tokens", o->capability_tokens,
                  "new tokens per IFEval response (default 1024, the paper's)")
      ->check(kPositiveInt);
  cmd->add_flag("--force", o->force, "diagnose and verify even when the target's flips are not significant");
  cmd->callback([o, cmd] {
    if (o->capability == 0 && cmd->get_option("--capability-tokens")->count() > 0)
      usage_error("--capability-tokens sets the capability check's generation, and --capability 0 turns it off");
    run_protocol_command(*o);
  });
}

}  // namespace kvaudit::cli
