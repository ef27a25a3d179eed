// An option that would change nothing on the path a command takes is refused with exit 2 naming
// it, never silently ignored (STYLE: bad input is never silently ignored): options of another mode
// (--endpoint-*, --text's --ppl-windows), flags that exclude each other, values outside their
// range, and --kv-storage / --compat with no scheme to apply them to.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../common/run_cli.h"
#include "../common/test_files.h"

namespace {

namespace fs = std::filesystem;
using kvaudit::testing::run_cli;

std::string fixture_model() { return (fs::path(KVAUDIT_FIXTURES) / "models" / "llama").string(); }
std::string out_dir() { return (fs::temp_directory_path() / ("kvaudit_refused_" + std::to_string(::getpid()))).string(); }

// Exit 2 and `message` somewhere in stderr.
void expect_refused(const std::vector<std::string>& args, const std::string& message) {
  const auto r = run_cli(args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << "stderr: " << r.err;
}

TEST(RefusedOptions, FlagsThatExcludeEachOther) {
  const std::string m = fixture_model();
  expect_refused({"generate", "--model", m, "--prompt", "x", "--raw", "--system", "s"}, "excludes");
  expect_refused({"generate", "--model", m, "--tokens", "1,2", "--system", "s"}, "--tokens excludes --system");
  expect_refused({"generate", "--model", m, "--tokens", "1,2", "--raw"}, "--tokens excludes --raw");
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--raw", "--system", "s", "--out", out_dir()}, "excludes");
  expect_refused({"ppl", "--model", m, "--text", "t.txt", "--data", "d"}, "excludes");
  expect_refused({"score", "--bench", "ifeval", "--responses", "r.jsonl", "--out", out_dir(), "--quiet", "--json"},
                 "excludes");
}

TEST(RefusedOptions, OptionsOfAnotherMode) {
  const std::string m = fixture_model(), out = out_dir();
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--endpoint-retries", "2", "--out", out},
                 "--endpoint-retries applies to --endpoint runs only");
  // Checked before any server is asked (nothing listens on port 9).
  const std::vector<std::string> ep = {"eval", "--bench", "advbench", "--endpoint", "http://127.0.0.1:9",
                                       "--baseline-endpoint", "http://127.0.0.1:9", "--out", out};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = ep;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  expect_refused(with({"--model", m}), "--model does not apply with --endpoint");
  expect_refused(with({"--compat", "paper"}), "--compat does not apply with --endpoint");
  expect_refused(with({"--threads", "2"}), "--threads applies with --endpoint only to a model judge");
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--ppl-windows", "2", "--out", out},
                 "--ppl-windows 2 needs --text");
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--column", "goal", "--out", out},
                 "--column 'goal' names a column of a FILE.csv or field of a FILE.jsonl benchmark, and --bench names none");
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--seed", "3", "--out", out},
                 "--seed 3 picks the --limit subset; without --limit every prompt runs");
  expect_refused({"audit", "--model", m, "--kv", "fp8e5m2", "--phase-bits", "8,4", "--out", out},
                 "--phase-bits: the target fp8e5m2 has no bit-width family");
  expect_refused({"audit", "--model", m, "--kv", "int4", "--capability", "0", "--capability-tokens", "5", "--out", out},
                 "--capability-tokens sets the capability check's generation, and --capability 0 turns it off");
  expect_refused({"diagnose", "--model", m, "--text", "t.txt", "--out", out}, "--text");
  expect_refused({"screen", "--model", m, "--kv", "int4", "--bench", "advbench", "--text", "t.txt", "--out", out},
                 "--text");
  expect_refused({"kv", "--scheme", "int4:token:asym", "--role", "k", "--in", "x.npy", "--out", "y.npy", "--calib",
                  "c.json"},
                 "--calib c.json: 'int4:token:asym' needs no calibration");
}

TEST(RefusedOptions, ValuesOutsideTheirRange) {
  const std::string m = fixture_model(), out = out_dir();
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--max-new-tokens", "0", "--out", out},
                 "--max-new-tokens: Value 0 not in range 1 to");
  expect_refused({"generate", "--model", m, "--prompt", "x", "--max-new-tokens", "0"},
                 "--max-new-tokens: Value 0 not in range 1 to");
  expect_refused({"serve", "--model", m, "--max-new-tokens", "0"}, "--max-new-tokens: Value 0 not in range 1 to");
  expect_refused({"audit", "--model", m, "--kv", "int4", "--subspace-k", "-3", "--out", out}, "--subspace-k");
  expect_refused({"audit", "--model", m, "--kv", "int4", "--target-recovery", "0", "--out", out},
                 "--target-recovery: must be in (0, 1]");
  expect_refused({"generate", "--model", m, "--prompt", "x", "--threads", "0"}, "--threads: Value 0 not in range 1 to");
  expect_refused({"serve", "--model", m, "--max-prompt-tokens", "0"}, "--max-prompt-tokens");
  expect_refused({"ppl", "--model", m, "--text", "t.txt", "--window", "8", "--stride", "8", "--score-from", "7"},
                 "--score-from (7) must be below --window - 1 (7): no target would be scored");
  for (const char* t : {"nan", "-1", "1", "x"})
    expect_refused({"sweep", "--model", m, "--bench", "advbench", "--threshold", t, "--out", out}, "--threshold");
  // A negative byte count would wrap to 2^64 - 5 in a size_t: no limit at all.
  expect_refused({"serve", "--model", m, "--max-body-bytes", "-5"}, "--max-body-bytes");
  expect_refused({"kv", "--scheme", "int4", "--in", "x.npy", "--out", "y.npy"}, "--role is required");
}

TEST(RefusedOptions, StorageWithoutASchemeToApplyItTo) {
  const std::string f = fixture_model();
  expect_refused({"generate", "--model", f, "--tokens", "1,2", "--kv-storage", "packed"},
                 "--kv-storage applies to the --kv / --kv-policy schemes and none is given");
  expect_refused({"logits", "--model", f, "--tokens", "1,2", "--compat", "paper", "--out", out_dir() + ".npy"},
                 "--compat applies to the --kv / --kv-policy schemes and none is given");
  expect_refused({"serve", "--model", f, "--kv-storage", "packed"}, "--kv-storage applies to the --kv");
  expect_refused({"bench", "--model", f, "--batch", "1", "--compat", "paper"}, "--compat applies to the --kv");
  const std::string m = kvaudit::testing::demo_model();  // eval and ppl load a tokenizer
  if (m.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not fetched (scripts/fetch-models.sh)";
  const std::string text = (fs::path(KVAUDIT_SOURCE_DIR) / "README.md").string();
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--kv-storage", "packed", "--out", out_dir()},
                 "--kv-storage applies to the --kv / --kv-policy schemes and none is given");
  expect_refused({"ppl", "--model", m, "--text", text, "--compat", "paper"},
                 "--compat applies to the --kv / --kv-policy schemes and none is given");
}

TEST(RefusedOptions, AuditOfAPolicyForAnotherModelOrAnUnknownPromptSet) {
  const std::string m = kvaudit::testing::demo_model();
  if (m.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not fetched (scripts/fetch-models.sh)";
  const fs::path pol = fs::path(out_dir() + "_pol2.json");
  std::ofstream(pol) << R"({"layers": [{"k": "int2:token:asym", "v": "int2:token:asym"},
                                       {"k": "int2:token:asym", "v": "int2:token:asym"}]})";
  // A 2-layer plan on the 30-layer model would audit layers 2..29 in 16 bits.
  for (const char* cmd : {"audit", "diagnose"})
    expect_refused({cmd, "--model", m, "--kv-policy", pol.string(), "--threads", "1", "--out", out_dir()},
                   "--kv-policy: " + pol.string() + ": KV policy lists 2 layers, but the model has 30");
  fs::remove(pol);
  expect_refused({"audit", "--model", m, "--kv", "int4", "--heldout", "nosuch:5", "--out", out_dir()},
                 "--heldout: unknown benchmark 'nosuch'");
  expect_refused({"audit", "--model", m, "--kv", "int4", "--calib", "nosuch", "--out", out_dir()},
                 "--calib: unknown benchmark 'nosuch'");
  expect_refused({"diagnose", "--model", m, "--kv", "int4", "--geometry-pairs", "2", "--subspace-k", "3", "--out", out_dir()},
                 "--subspace-k 3 exceeds --geometry-pairs 2: the pairs' differences span at most 2 directions");
}

// CLI11 reads "-5" into an unsigned option as 2^64 - 5: counts are range-checked on the text.
TEST(RefusedOptions, NegativeCounts) {
  const std::string m = "model.gguf";
  expect_refused({"ppl", "--model", m, "--window", "-5"}, "--window: Value -5 not in range");
  expect_refused({"ppl", "--model", m, "--max-windows", "-1"}, "--max-windows: Value -1 not in range");
  expect_refused({"ppl", "--model", m, "--score-from", "-1"}, "--score-from: Value -1 not in range");
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--limit", "-1"}, "--limit: Value -1 not in range");
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--limit", "0"}, "--limit: Value 0 not in range");
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--seed", "-1"}, "--seed: Value -1 not in range");
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--chunk", "-1"}, "--chunk: Value -1 not in range");
  expect_refused({"diagnose", "--model", m, "--geometry-pairs", "-1"}, "--geometry-pairs: Value -1 not in range");
}

// Text that is not UTF-8 would be tokenized as U+FFFD: refused, with the byte.
TEST(RefusedOptions, TextThatIsNotUtf8) {
  const std::string m = kvaudit::testing::demo_model();
  if (m.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not fetched (scripts/fetch-models.sh)";
  expect_refused({"tokenize", "--model", m, "--text", "ok \xff\xfe"}, "--text is not valid UTF-8 (byte 3)");
  expect_refused({"generate", "--model", m, "--prompt", "\xc3"}, "--prompt is not valid UTF-8 (byte 0)");
}

// An empty value would silently mean the default.
TEST(RefusedOptions, EmptyValues) {
  const std::string m = "model.gguf";
  for (const char* cmd : {"logits", "generate", "bench"})
    expect_refused({cmd, "--model", m, "--kv", ""}, "--kv: is empty (leave the option out for its default)");
  expect_refused({"logits", "--model", m, "--kv-policy", ""}, "--kv-policy: is empty");
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--kv", ""}, "--kv: is empty");
  for (const char* opt : {"--kv", "--phase-bits", "--calib", "--heldout"})
    expect_refused({"diagnose", "--model", m, opt, ""}, std::string(opt) + ": is empty");
}

TEST(RefusedOptions, TextTooShortForPerplexity) {
  const std::string m = kvaudit::testing::demo_model();
  if (m.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not fetched (scripts/fetch-models.sh)";
  const fs::path empty = fs::path(out_dir() + "_empty.txt");
  { std::ofstream f(empty); }
  const std::string why = "(special tokens included): perplexity needs at least 2";
  expect_refused({"ppl", "--model", m, "--text", empty.string(), "--threads", "1"}, why);
  // eval checks it before generating anything.
  expect_refused({"eval", "--model", m, "--bench", "advbench", "--limit", "1", "--text", empty.string(), "--threads", "1",
                  "--out", out_dir()},
                 why);
  fs::remove(empty);
}

}  // namespace
