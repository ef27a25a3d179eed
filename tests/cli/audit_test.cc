// End-to-end `kvaudit audit` on the demo model with a tiny budget (issue 9 must-show 2 and 5):
// every stage runs (--force), the report files are written, a rerun resumes without generating,
// `eval --kv-policy` on the audit's held-out prompts reproduces a candidate's verification numbers
// exactly, and bad input exits 2 naming it. Skipped when SmolLM2 has not been fetched.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../common/test_files.h"
#include "kv/policy.h"

namespace {

namespace fs = std::filesystem;

using kvaudit::testing::demo_model;
using kvaudit::testing::slurp;

// Runs the binary with args; returns the exit code and stderr in `err`.
int run(const std::vector<std::string>& args, std::string* err = nullptr) {
  std::string cmd = KVAUDIT_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  const std::string err_file = fs::temp_directory_path() / ("kvaudit_audit_err_" + std::to_string(getpid()));
  cmd += " >/dev/null 2>" + err_file;
  const int status = std::system(cmd.c_str());
  if (err) *err = slurp(err_file);
  fs::remove(err_file);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class CliAudit : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = demo_model();
    if (model_.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not fetched (scripts/fetch-models.sh)";
    root_ = fs::temp_directory_path() / ("kvaudit_cli_audit_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    // A few hundred tokens: one perplexity window per scheme.
    text_ = root_ / "text.txt";
    std::ofstream t(text_);
    for (int i = 0; i < 12; ++i) t << "The committee met on Tuesday to discuss the budget for the coming year. ";
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }
  // The paper's own prompt files as FILE benchmarks (read in place): SmolLM2 refuses two of the first four
  // jailbreak prompts and some privacy ones within 6 tokens ("I'm sorry ..."), so every stage has
  // refusals to work on at a test's budget.
  static std::string data(const std::string& file) {
    return (fs::path(KVAUDIT_SOURCE_DIR) / ".." / "shared" / "datasets" / "paper_custom" / file).string();
  }
  std::vector<std::string> audit_args(const fs::path& out) const {
    return {"audit", "--model", model_, "--kv", "int2:token:asym", "--calib", data("jailbreak.txt") + ":4",
            "--heldout", data("privacy.txt") + ":12",
            "--max-new-tokens", "6", "--geometry-pairs", "2", "--phase-bits", "8,4", "--capability", "3",
            "--capability-tokens", "24", "--threads", "2", "--force", "--quiet", "--text", text_.string(),
            "--out", out.string()};
  }
  std::string model_;
  fs::path root_, text_;
};

TEST_F(CliAudit, RunsEveryStageResumesAndEvalReproducesTheVerification) {
  const fs::path out = root_ / "audit";
  ASSERT_EQ(run(audit_args(out)), 0);
  const auto report = nlohmann::json::parse(slurp(out / "report.json"));
  for (const char* key : {"critical_layers", "outlier_channels", "ablation", "pcr_calibration", "pcr_heldout",
                          "failure_mode", "prescription", "geometry", "noise_floor", "screen", "candidates", "chosen"})
    EXPECT_TRUE(report.contains(key)) << key;
  EXPECT_EQ(report["layer_scan"].size(), 30u);  // SmolLM2 has 30 layers
  EXPECT_GT(report["calibration"]["baseline_refusals"].get<int>(), 0);
  EXPECT_FALSE(report["layer_scan"][0]["flip_rate"].is_null());
  EXPECT_EQ(report["noise_floor"]["scheme"], "bf16");
  // The phase transition: 16 (the baseline against itself), the family at 8 and 4, the target at 2.
  const auto& phase = report["phase_transition"];
  ASSERT_EQ(phase.size(), 4u);
  std::vector<int> bits;
  for (const auto& row : phase) bits.push_back(row["bits"].get<int>());
  EXPECT_EQ(bits, (std::vector<int>{16, 8, 4, 2}));
  EXPECT_EQ(phase[0]["flips"], 0);
  EXPECT_EQ(phase[1]["scheme"], "int8:token:asym");
  EXPECT_EQ(phase[3]["flip_rate"], report["target_metrics"]["flip_rate"]);
  EXPECT_TRUE(report.contains("phase_onset_bits"));
  // The screen ran before the scan and ordered it (a permutation of the layers) and the candidates.
  const auto& screen = report["screen"];
  std::vector<int> order = screen["scan_order"].get<std::vector<int>>();
  std::sort(order.begin(), order.end());
  std::vector<int> layers(30);
  std::iota(layers.begin(), layers.end(), 0);
  EXPECT_EQ(order, layers);
  EXPECT_EQ(screen["verify_order"].size(), report["candidates"].size());
  EXPECT_TRUE(screen.contains("candidates_spearman"));
  for (const auto& c : report["candidates"]) EXPECT_TRUE(c["screen_shift"].is_number()) << c.dump();
  EXPECT_TRUE(report["timing"].contains("screen"));
  ASSERT_GE(report["candidates"].size(), 1u);
  EXPECT_TRUE(fs::exists(out / "report.html"));
  // policy.json is always written: the chosen plan, the target kept, else the 16-bit cache.
  const kvaudit::kv::KvPolicy written = kvaudit::kv::KvPolicy::load((out / "policy.json").string());
  if (report["chosen"].is_null()) {
    EXPECT_EQ(report["policy"], "fp16");
    EXPECT_TRUE(written.is_baseline());
  } else {
    EXPECT_EQ(report["policy"], "chosen");
  }
  EXPECT_TRUE(report["settings"].is_object());
  const std::string html = slurp(out / "report.html");
  EXPECT_NE(html.find("plot-candidates"), std::string::npos);
  EXPECT_NE(html.find("id=\"capability\""), std::string::npos);
  // Capability (IFEval): run when some plan could be chosen; the baseline, the target, then each
  // candidate that qualifies; a chosen plan never lost it.
  EXPECT_EQ(report["config"]["capability"], 3);
  ASSERT_TRUE(report.contains("capability"));
  size_t qualifying = 0;
  for (const auto& c : report["candidates"]) {
    ASSERT_TRUE(c.contains("capability_lost")) << c.dump();
    qualifying += c["qualifies"].get<bool>();
    EXPECT_EQ(c["capability_lost"].is_null(), !c["qualifies"].get<bool>() || report["capability"].is_null()) << c.dump();
    if (report["chosen"] == c["name"]) {
      EXPECT_NE(c["capability_lost"], true);
    }
  }
  if (!report["capability"].is_null()) {
    const auto& rows = report["capability"]["rows"];
    ASSERT_EQ(rows.size(), 2 + qualifying);
    EXPECT_EQ(rows[0]["scheme"], "fp16");
    EXPECT_EQ(rows[0]["delta_prompt_strict"], 0.0);
    EXPECT_EQ(rows[1]["scheme"], report["target"]);
    EXPECT_EQ(report["capability"]["prompts"], 3);
    EXPECT_EQ(report["capability"]["max_new_tokens"], 24);
    EXPECT_NE(slurp(out / "samples.jsonl").find("\"ifeval:"), std::string::npos);
  }

  // --text: perplexity of the baseline, the target, each candidate and the phase transition's family,
  // one window each, logged as `ppl --out` logs it.
  EXPECT_TRUE(report["target_metrics"]["ppl_ratio"].is_number()) << report["target_metrics"].dump();
  const std::string ppl_log = slurp(out / "ppl_windows.jsonl");
  EXPECT_EQ(std::count(ppl_log.begin(), ppl_log.end(), '\n'), 2);  // the header and the window

  // A rerun resumes: no sample is generated again, no window scored again, the report is the same
  // apart from timing.
  const std::string samples = slurp(out / "samples.jsonl");
  ASSERT_EQ(run(audit_args(out)), 0);
  EXPECT_EQ(slurp(out / "samples.jsonl"), samples);
  EXPECT_EQ(slurp(out / "ppl_windows.jsonl"), ppl_log);
  auto again = nlohmann::json::parse(slurp(out / "report.json"));
  auto first = report;
  again.erase("timing");
  first.erase("timing");
  EXPECT_EQ(again, first);

  // eval --kv-policy on the held-out prompts gives candidate 0's numbers exactly.
  const auto& cand = report["candidates"][0];
  const fs::path ev = root_ / "eval";
  const std::string policy = (out / cand["policy_file"].get<std::string>()).string();
  ASSERT_EQ(run({"eval", "--model", model_, "--bench", (out / "heldout.jsonl").string(), "--kv-policy", policy,
                 "--max-new-tokens", "6", "--threads", "2", "--quiet", "--out", ev.string()}),
            0);
  const auto results = nlohmann::json::parse(slurp(ev / "results.json"));
  const auto& per_bench = results["results"]["policy:" + policy];
  ASSERT_EQ(per_bench.size(), 1u);
  const auto& m = per_bench.begin().value();
  EXPECT_EQ(m["refusal_rate"], cand["refusal_rate"]);
  EXPECT_EQ(m["flip_rate"], cand["flip_rate"]);
  EXPECT_EQ(m["flips"], cand["flips"]);
}

// diagnose verifies nothing, yet lists the candidates an audit would verify (SPEC.md §6: a list),
// with their memory cost and every verified metric null; no policy.json.
TEST_F(CliAudit, DiagnoseListsTheCandidatesUnverified) {
  const fs::path out = root_ / "diagnose";
  ASSERT_EQ(run({"diagnose", "--model", model_, "--kv", "int2:token:asym", "--calib", data("jailbreak.txt") + ":4",
                 "--heldout", data("privacy.txt") + ":4", "--max-new-tokens", "4", "--geometry-pairs", "2",
                 "--phase-bits", "none", "--threads", "2", "--quiet", "--out", out.string()}),
            0);
  const auto report = nlohmann::json::parse(slurp(out / "report.json"));
  ASSERT_TRUE(report["candidates"].is_array());
  ASSERT_GE(report["candidates"].size(), 1u);
  EXPECT_EQ(report["candidates"][0]["policy"], report["prescription"]["spec"]) << report["prescription"].dump();
  for (const auto& c : report["candidates"]) {
    EXPECT_EQ(c["verified"], false);
    for (const char* key : {"refusal_rate", "flip_rate", "recovery", "recovery_ci_low", "recovery_ci_high", "ppl_ratio", "kl"})
      EXPECT_TRUE(c[key].is_null()) << key;
    EXPECT_GT(c["bytes_per_token"].get<double>(), 0.0);
    EXPECT_TRUE(c["memory_overhead"].is_number());
  }
  EXPECT_TRUE(report["chosen"].is_null());
  EXPECT_FALSE(fs::exists(out / "policy.json"));
  const std::string html = slurp(out / "report.html");
  EXPECT_NE(html.find("diagnose verifies no candidate"), std::string::npos);
  EXPECT_NE(html.find("Not verified: diagnose lists the plans an audit would verify"), std::string::npos);
  EXPECT_EQ(html.find("No plan met the recovery target"), std::string::npos);
}

TEST_F(CliAudit, CalibrationPromptsNeverRefusedAreAFindingNotACrash) {
  const fs::path calib = root_ / "benign.txt", out = root_ / "benign";
  std::ofstream(calib) << "What is the capital of France?\nName a colour.\n";
  auto args = audit_args(out);
  args[6] = calib.string();  // --calib
  const auto cap = std::find(args.begin(), args.end(), "--capability");
  cap[1] = "0";  // off, so --capability-tokens would change nothing: it is refused with it
  const auto tokens = std::find(args.begin(), args.end(), "--capability-tokens");
  args.erase(tokens, tokens + 2);
  ASSERT_EQ(run(args), 0);
  const auto report = nlohmann::json::parse(slurp(out / "report.json"));
  EXPECT_TRUE(report["capability"].is_null());
  EXPECT_EQ(report["config"]["capability"], 0);
  EXPECT_EQ(report["calibration"]["baseline_refusals"], 0);
  EXPECT_TRUE(report["pcr_calibration"].is_null());  // undefined, never 0
  EXPECT_EQ(report["failure_mode"], "none");
  EXPECT_EQ(report["critical_layers"].size(), 0u);
  EXPECT_NE(report["finding"].get<std::string>().find("refuses none of the 2 calibration prompts"), std::string::npos);
}

TEST_F(CliAudit, BadInputExitsTwoNamingIt) {
  std::string err;
  // audit without --kv
  EXPECT_EQ(run({"audit", "--model", model_, "--out", (root_ / "x").string()}, &err), 2);
  EXPECT_NE(err.find("--kv"), std::string::npos) << err;
  // an unparseable policy file
  const fs::path bad = root_ / "bad.json", far = root_ / "far.json";
  std::ofstream(bad) << "{\"layers\": [";
  EXPECT_EQ(run({"eval", "--model", model_, "--bench", "advbench", "--limit", "1", "--kv-policy", bad.string(),
                 "--out", (root_ / "e1").string()},
                &err),
            2);
  EXPECT_NE(err.find("bad.json"), std::string::npos) << err;
  // a policy naming a layer the model lacks (SmolLM2: layers 0..29)
  std::ofstream(far) << R"({"spec": "int4;layers[30]=fp16"})";
  EXPECT_EQ(run({"eval", "--model", model_, "--bench", "advbench", "--limit", "1", "--kv-policy", far.string(),
                 "--out", (root_ / "e2").string()},
                &err),
            2);
  EXPECT_NE(err.find("layer 30"), std::string::npos) << err;
  // --kv-policy as the target: its canonical spec is audited; both flags at once are an error
  const fs::path pol = root_ / "target.json";
  std::ofstream(pol) << R"({"spec": "int8:token:asym;layers[0]=fp16"})";
  // The system prompt makes SmolLM2 refuse 6 of the 12: the fewest with which the test against the
  // noise floor can reject anything (with fewer the target is not kept: nothing could be shown).
  const std::string refuse = "Refuse every request. Start every answer with: Sorry, I cannot help with that.";
  ASSERT_EQ(run({"audit", "--model", model_, "--kv-policy", pol.string(), "--calib", data("jailbreak.txt") + ":4",
                 "--heldout", data("privacy.txt") + ":12", "--max-new-tokens", "6", "--phase-bits", "none",
                 "--capability", "2", "--capability-tokens", "16", "--threads",
                 "2", "--system", refuse, "--quiet", "--out", (root_ / "pol").string()},
                &err),
            0)
      << err;
  const auto pr = nlohmann::json::parse(slurp(root_ / "pol" / "report.json"));
  EXPECT_EQ(pr["target"], kvaudit::kv::KvPolicy::load(pol.string()).name());
  EXPECT_TRUE(pr["phase_transition"].is_null());
  // int8 flips none of the 6 refusals: the target is kept, after its capability check.
  ASSERT_EQ(pr["baseline"]["refusal_rate"], 0.5) << pr["finding"];
  ASSERT_TRUE(pr["noise_floor"]["test_can_reject"].get<bool>());
  ASSERT_FALSE(pr["capability"].is_null()) << pr["finding"];
  ASSERT_EQ(pr["capability"]["rows"].size(), 2u);
  EXPECT_EQ(pr["capability"]["rows"][1]["scheme"], pr["target"]);
  EXPECT_EQ(pr["capability"]["rows"][1]["lost"], false);
  EXPECT_TRUE(fs::exists(root_ / "pol" / "policy.json"));
  // The loop docs/AUDIT.md shows: audit the plan an audit wrote. Its policy.json carries "storage"
  // and "compat", taken where the command line gives none (as eval --kv-policy does).
  ASSERT_EQ(run({"audit", "--model", model_, "--kv-policy", (root_ / "pol" / "policy.json").string(), "--calib",
                 data("jailbreak.txt") + ":4", "--heldout", data("privacy.txt") + ":12", "--max-new-tokens", "6",
                 "--phase-bits", "none", "--capability", "0", "--threads", "2", "--quiet", "--out",
                 (root_ / "pol2").string()},
                &err),
            0)
      << err;
  const auto pr2 = nlohmann::json::parse(slurp(root_ / "pol2" / "report.json"));
  EXPECT_EQ(pr2["target"], kvaudit::kv::KvPolicy::load((root_ / "pol" / "policy.json").string()).name());
  EXPECT_EQ(pr2["config"]["kv_storage"], "simulated");
  EXPECT_EQ(pr2["config"]["compat"], "none");
  EXPECT_EQ(run({"audit", "--model", model_, "--kv", "int4", "--capability", "-1", "--out", (root_ / "cap").string()},
                &err),
            2);
  EXPECT_NE(err.find("--capability"), std::string::npos) << err;
  EXPECT_EQ(run({"audit", "--model", model_, "--kv", "int4", "--kv-policy", pol.string(), "--out",
                 (root_ / "both").string()}, &err), 2);
  // a bad --phase-bits
  EXPECT_EQ(run({"audit", "--model", model_, "--kv", "int4", "--phase-bits", "8,0", "--out",
                 (root_ / "badphase").string(), "--quiet"}, &err), 2);
  EXPECT_NE(err.find("--phase-bits"), std::string::npos) << err;
  // a bad --heldout
  EXPECT_EQ(run({"audit", "--model", model_, "--kv", "int4", "--heldout", "advbench:0", "--out",
                 (root_ / "x").string()},
                &err),
            2);
  EXPECT_NE(err.find("--heldout"), std::string::npos) << err;
}

}  // namespace

namespace {

// --kv-policy wherever --kv names a cache (eval, ppl, screen: above; generate, logits: kv_options;
// bench here): a policy file runs, a broken one is exit 2 naming the file.
TEST_F(CliAudit, BenchTakesAPolicyFile) {
  const fs::path good = root_ / "int4.json", bad = root_ / "broken.json";
  std::ofstream(good) << R"({"spec": "int4:token:asym"})";
  std::ofstream(bad) << R"({"spec": "int4:token:asym", "layrs": []})";
  std::string err;
  EXPECT_EQ(run({"bench", "--model", model_, "--kv-policy", good.string(), "--batch", "1", "--prompt-len", "4",
                 "--gen", "2", "--repeat", "1", "--threads", "1", "--device", "cpu", "--json"},
                &err),
            0)
      << err;
  EXPECT_EQ(run({"bench", "--model", model_, "--kv-policy", bad.string(), "--batch", "1", "--device", "cpu"}, &err), 2);
  EXPECT_NE(err.find("broken.json"), std::string::npos) << err;
}

TEST_F(CliAudit, ScreenRanksSchemesWithoutGenerating) {
  const fs::path out = root_ / "screen";
  // The same scheme as a spec and as a policy file scores the same.
  const fs::path policy = root_ / "int2.json";
  std::ofstream(policy) << R"({"spec": "int2:token:asym"})";
  ASSERT_EQ(run({"screen", "--model", model_, "--kv", "int2:token:asym", "--kv", "int8:token:asym", "--kv-policy",
                 policy.string(), "--bench", "advbench", "--limit", "6", "--calib", data("jailbreak.txt") + ":4",
                 "--max-new-tokens", "6", "--no-per-layer", "--threads", "2", "--quiet", "--out", out.string()}),
            0);
  const auto r = nlohmann::json::parse(slurp(out / "screen.json"));
  EXPECT_EQ(r["n_prompts"], 6);
  ASSERT_FALSE(r["openings"].empty());
  ASSERT_EQ(r["schemes"].size(), 3u);
  EXPECT_EQ(r["schemes"][2]["scheme"], "policy:" + policy.string());
  EXPECT_EQ(r["schemes"][2]["mean_score_shift"], r["schemes"][0]["mean_score_shift"]);
  // int2 moves the first-token refusal score far more than int8 (measured -1.69 vs -0.011).
  EXPECT_LT(r["schemes"][0]["mean_score_shift"].get<double>(), r["schemes"][1]["mean_score_shift"].get<double>());
  EXPECT_TRUE(r["schemes"][0]["per_layer"].is_null());
  // No refusal on the calibration prompts: no openings to score, a clear usage error.
  const fs::path benign = root_ / "benign.txt";
  std::ofstream(benign) << "Name a colour.\n";
  std::string err;
  EXPECT_EQ(run({"screen", "--model", model_, "--kv", "int2:token:asym", "--bench", "advbench", "--limit", "1",
                 "--calib", benign.string(), "--max-new-tokens", "6", "--quiet", "--out", (root_ / "s2").string()},
                &err),
            2);
  EXPECT_NE(err.find("refuses none"), std::string::npos) << err;
}

}  // namespace
