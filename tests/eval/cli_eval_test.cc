// End-to-end `kvaudit eval` on the demo model (scripts/fetch-models.sh smollm2): determinism and
// resume after SIGKILL (issue "Safety evaluation", must-show 3 and 4). Skipped when the model has
// not been fetched; tests never download.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../common/run_cli.h"

#include "../common/test_files.h"

namespace {

namespace fs = std::filesystem;

using kvaudit::testing::demo_model;
using kvaudit::testing::slurp;

// Small on purpose: 1 AdvBench prompt x (fp16, int2) x 4 new tokens; one sample per flush.
std::vector<std::string> eval_args(const std::string& model, const fs::path& out) {
  return {KVAUDIT_BINARY, "eval", "--model", model, "--bench", "advbench", "--limit", "1", "--seed", "1",
          "--kv", "int2:token:asym", "--max-new-tokens", "4", "--raw", "--threads", "2", "--chunk", "1",
          "--quiet", "--json", "--out", out.string()};
}

pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::freopen("/dev/null", "w", stdout);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int run(const std::vector<std::string>& args) {
  int status = 0;
  waitpid(spawn(args), &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs args with writes capped at max_file_bytes per file (RLIMIT_FSIZE, inherited across exec; the
// binary ignores SIGXFSZ, so a write past it fails with EFBIG): a disk that fills up mid-run.
// stderr comes back through a pipe, which the limit does not apply to.
int run_with_fsize_limit(const std::vector<std::string>& args, rlim_t max_file_bytes, std::string* err) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    const rlimit lim{max_file_bytes, max_file_bytes};
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(126);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::freopen("/dev/null", "w", stdout);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) err->append(buf, size_t(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

size_t lines(const fs::path& p);

// Starts args, SIGKILLs it as soon as `log` has at least min_lines complete lines (or after 120 s),
// and returns the complete lines the killed run left there.
size_t run_until_lines_then_kill(const std::vector<std::string>& args, const fs::path& log, size_t min_lines) {
  const pid_t pid = spawn(args);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && (!fs::exists(log) || lines(log) < min_lines))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return lines(log);
}

nlohmann::json without_timing(const fs::path& results) {
  auto j = nlohmann::json::parse(slurp(results));
  j.erase("timing");
  return j;
}

size_t lines(const fs::path& p) {
  const std::string s = slurp(p);
  return size_t(std::count(s.begin(), s.end(), '\n'));
}

class CliEval : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = demo_model();
    if (model_.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not fetched (scripts/fetch-models.sh)";
    root_ = fs::temp_directory_path() / ("kvaudit_cli_eval_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }
  std::string model_;
  fs::path root_;
};

TEST_F(CliEval, TwoRunsGiveByteIdenticalResultsAndResumeAfterSigkill) {
  const fs::path a = root_ / "a", b = root_ / "b", k = root_ / "killed";
  ASSERT_EQ(run(eval_args(model_, a)), 0);
  ASSERT_EQ(run(eval_args(model_, b)), 0);
  // Determinism: identical bytes once "timing" is set aside.
  EXPECT_EQ(without_timing(a / "results.json").dump(2), without_timing(b / "results.json").dump(2));
  std::string ra = slurp(a / "results.json"), rb = slurp(b / "results.json");
  ra.resize(ra.find("\"timing\""));
  rb.resize(rb.find("\"timing\""));
  EXPECT_EQ(ra, rb);
  EXPECT_EQ(slurp(a / "samples.jsonl"), slurp(b / "samples.jsonl"));
  EXPECT_EQ(lines(a / "samples.jsonl"), 3u);  // fp16, int2 and the bf16 noise-floor control

  // SIGKILL once the first sample is on disk, then rerun the same command.
  const size_t before = run_until_lines_then_kill(eval_args(model_, k), k / "samples.jsonl", 1);
  ASSERT_GE(before, 1u);
  ASSERT_EQ(run(eval_args(model_, k)), 0);
  const auto results = nlohmann::json::parse(slurp(k / "results.json"));
  // Finished samples are not recomputed: each (id, scheme) once, the rest generated now.
  EXPECT_EQ(results["timing"]["samples_resumed"].get<size_t>(), before);
  EXPECT_EQ(results["timing"]["samples_generated"].get<size_t>(), 3u - before);
  std::set<std::pair<std::string, std::string>> keys;
  std::istringstream in(slurp(k / "samples.jsonl"));
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(keys.emplace(j["id"], j["scheme"]).second) << line;
  }
  EXPECT_EQ(keys.size(), 3u);
  EXPECT_EQ(without_timing(k / "results.json")["results"], without_timing(a / "results.json")["results"]);
}

// Each (id, scheme) of a samples.jsonl once; returns how many lines it has.
size_t expect_unique_samples(const fs::path& samples) {
  std::set<std::pair<std::string, std::string>> keys;
  std::istringstream in(slurp(samples));
  size_t n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(keys.emplace(j["id"], j["scheme"]).second) << line;
  }
  return n;
}

// `sweep` resumes as eval does (issue 12): killed after its first sample, the rerun generates only
// the samples it lacks, and results.json "results" and sweep.json equal an uninterrupted run's.
TEST_F(CliEval, SweepResumesAfterSigkill) {
  const auto args = [&](const fs::path& out) {
    return std::vector<std::string>{KVAUDIT_BINARY, "sweep", "--model", model_, "--bench", "advbench", "--limit", "1",
                                    "--seed", "1", "--scheme", "int:token:asym", "--bits", "16,4,2", "--max-new-tokens",
                                    "4", "--raw", "--threads", "2", "--chunk", "1", "--quiet", "--json", "--out",
                                    out.string()};
  };
  const fs::path a = root_ / "a", k = root_ / "killed";
  ASSERT_EQ(run(args(a)), 0);
  const size_t total = lines(a / "samples.jsonl");
  ASSERT_EQ(total, 4u);  // 1 prompt x (fp16, int4, int2, the bf16 noise-floor control)
  const size_t before = run_until_lines_then_kill(args(k), k / "samples.jsonl", 1);
  ASSERT_GE(before, 1u);
  ASSERT_LT(before, total) << "the run finished before it was killed; nothing was resumed";
  const std::string kept = slurp(k / "samples.jsonl").substr(0, slurp(k / "samples.jsonl").rfind('\n') + 1);
  ASSERT_EQ(run(args(k)), 0);
  const auto results = nlohmann::json::parse(slurp(k / "results.json"));
  EXPECT_EQ(results["timing"]["samples_resumed"].get<size_t>(), before);
  EXPECT_EQ(results["timing"]["samples_generated"].get<size_t>(), total - before);
  EXPECT_EQ(slurp(k / "samples.jsonl").substr(0, kept.size()), kept);  // finished lines untouched
  EXPECT_EQ(expect_unique_samples(k / "samples.jsonl"), total);
  EXPECT_EQ(without_timing(k / "results.json")["results"], without_timing(a / "results.json")["results"]);
  EXPECT_EQ(slurp(k / "sweep.json"), slurp(a / "sweep.json"));
  // --json prints results.json with sweep.json (the onsets) under "sweep".
  auto again = args(a);
  again.erase(again.begin());
  const auto printed = kvaudit::testing::run_cli(again);
  ASSERT_EQ(printed.code, 0) << printed.err;
  const auto j = nlohmann::json::parse(printed.out);
  EXPECT_EQ(j["sweep"], nlohmann::json::parse(slurp(a / "sweep.json")));
  EXPECT_TRUE(j["sweep"]["onset"].contains("advbench"));
  EXPECT_EQ(j["results"], without_timing(a / "results.json")["results"]);
}

// `ppl --out` (issue 12): each finished window is appended to ppl_windows.jsonl; killed after its
// first window, the rerun computes only the others (each window is in the log once, the killed
// run's lines untouched) and ppl.json is byte-identical to an uninterrupted run's.
// eval --text keeps its perplexity windows in DIR/ppl_windows.jsonl: a rerun scores none again, and a
// rerun with another scheme added recomputes them (the log is replaced) instead of stopping.
TEST_F(CliEval, EvalTextWindowsResumeAndAnAddedSchemeRecomputesThem) {
  const fs::path text = root_ / "eval_text.txt", out = root_ / "eval_text";
  {
    std::ofstream t(text);
    for (int i = 0; i < 4; ++i) t << "The committee met on Tuesday to discuss the budget for the coming year. ";
  }
  std::vector<std::string> args = eval_args(model_, out);
  args.insert(args.end() - 2, {"--text", text.string()});
  ASSERT_EQ(run(args), 0);
  const std::string log = slurp(out / "ppl_windows.jsonl");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 2);  // the header and the one window
  const auto first = nlohmann::json::parse(slurp(out / "results.json"))["results"];
  ASSERT_EQ(run(args), 0);
  EXPECT_EQ(slurp(out / "ppl_windows.jsonl"), log);
  EXPECT_EQ(nlohmann::json::parse(slurp(out / "results.json"))["results"], first);
  args.insert(args.end() - 2, {"--kv", "int4:token:asym"});
  ASSERT_EQ(run(args), 0);
  const auto added = nlohmann::json::parse(slurp(out / "results.json"))["results"];
  EXPECT_EQ(added["int2:token:asym"], first["int2:token:asym"]);  // the same windows, the same sums
  EXPECT_TRUE(added["int4:token:asym"]["advbench"]["ppl_ratio"].is_number());
  EXPECT_NE(slurp(out / "ppl_windows.jsonl"), log);
}

TEST_F(CliEval, PplResumesAfterSigkill) {
  const fs::path text = root_ / "text.txt";
  {
    std::ofstream t(text);
    for (int i = 0; i < 6; ++i)
      t << "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
           "foolishness, it was the epoch of belief, it was the epoch of incredulity. ";
  }
  const auto args = [&](const fs::path& out) {
    return std::vector<std::string>{KVAUDIT_BINARY, "ppl", "--model", model_, "--text", text.string(), "--window", "48",
                                    "--stride", "24", "--max-windows", "5", "--kv", "int2:token:asym", "--threads",
                                    "2", "--quiet", "--json", "--out", out.string()};
  };
  const fs::path a = root_ / "a", k = root_ / "killed";
  ASSERT_EQ(run(args(a)), 0);
  const size_t total = lines(a / "ppl_windows.jsonl");
  ASSERT_EQ(total, 1u + 5u);  // the header and 5 windows
  const size_t before = run_until_lines_then_kill(args(k), k / "ppl_windows.jsonl", 2);
  ASSERT_GE(before, 2u);
  ASSERT_LT(before, total) << "the run finished before it was killed; nothing was resumed";
  const std::string log = slurp(k / "ppl_windows.jsonl");
  const std::string kept = log.substr(0, log.rfind('\n') + 1);
  ASSERT_EQ(run(args(k)), 0);
  const std::string resumed = slurp(k / "ppl_windows.jsonl");
  EXPECT_EQ(resumed.substr(0, kept.size()), kept);
  EXPECT_EQ(lines(k / "ppl_windows.jsonl"), total);  // a recomputed window would be appended again
  std::set<size_t> windows;
  std::istringstream in(resumed);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) EXPECT_TRUE(windows.insert(nlohmann::json::parse(line)["window"].get<size_t>()).second);
  EXPECT_EQ(windows.size(), 5u);
  EXPECT_EQ(slurp(k / "ppl.json"), slurp(a / "ppl.json"));
  const auto r = nlohmann::json::parse(slurp(a / "ppl.json"));
  EXPECT_GT(r["results"]["int2:token:asym"]["kl"].get<double>(), 0.0);

  // A log another run wrote (other --kv) is refused, naming the file; nothing is overwritten.
  auto other = args(k);
  other[13] = "int4:token:asym";
  EXPECT_EQ(run(other), 2);
  EXPECT_EQ(slurp(k / "ppl_windows.jsonl"), resumed);
  // So is one of the same text file edited in place, its token count unchanged: its windows scored
  // another text (the header's tokens_sha256).
  const std::string words = slurp(text);
  std::string swapped = words;
  const size_t best = swapped.find("best"), worst = swapped.find("worst");
  swapped.replace(worst, 5, "best").replace(best, 4, "worst");
  { std::ofstream(text, std::ios::trunc) << swapped; }
  const auto header = nlohmann::json::parse(resumed.substr(0, resumed.find('\n')));
  EXPECT_EQ(run(args(k)), 2);
  EXPECT_EQ(slurp(k / "ppl_windows.jsonl"), resumed);
  { std::ofstream(text, std::ios::trunc) << words; }
  EXPECT_TRUE(header["tokens_sha256"].is_string());
}

// A write that fails (issue 12): results.json past the file-size limit leaves the previous one
// byte-identical and the message names it; a samples.jsonl append that fails leaves no torn line,
// and the rerun resumes from the complete ones.
TEST_F(CliEval, FailedWritesKeepThePreviousFilesAndResume) {
  const fs::path a = root_ / "a", c = root_ / "capped";
  ASSERT_EQ(run(eval_args(model_, a)), 0);
  const std::string results = slurp(a / "results.json"), samples = slurp(a / "samples.jsonl");
  ASSERT_GT(results.size(), 200u);

  // Rerun on the same --out: every sample resumes (nothing appended), then results.json fails.
  std::string err;
  EXPECT_EQ(run_with_fsize_limit(eval_args(model_, a), 128, &err), 1);
  EXPECT_EQ(err, "kvaudit: failed: writing " + (a / "results.json").string() +
                     " failed (write: File too large); the previous file is left intact\n");
  EXPECT_EQ(slurp(a / "results.json"), results);
  EXPECT_EQ(slurp(a / "samples.jsonl"), samples);

  // A fresh --out with room for the first sample line and 10 bytes: the second append fails.
  const size_t first_line = samples.find('\n') + 1;
  err.clear();
  EXPECT_EQ(run_with_fsize_limit(eval_args(model_, c), first_line + 10, &err), 1);
  EXPECT_NE(err.find("cannot append to '" + (c / "samples.jsonl").string() + "': File too large; the file is cut "
                     "back to its last complete line (" + std::to_string(first_line) + " bytes"),
            std::string::npos)
      << err;
  EXPECT_EQ(slurp(c / "samples.jsonl"), samples.substr(0, first_line));
  EXPECT_FALSE(fs::exists(c / "results.json"));
  // Space again: the rerun resumes the one complete sample and generates the other.
  ASSERT_EQ(run(eval_args(model_, c)), 0);
  EXPECT_EQ(slurp(c / "samples.jsonl"), samples);
  const auto r = nlohmann::json::parse(slurp(c / "results.json"));
  EXPECT_EQ(r["timing"]["samples_resumed"].get<size_t>(), 1u);
  EXPECT_EQ(without_timing(c / "results.json")["results"], without_timing(a / "results.json")["results"]);
}

// A model file replaced at the same path is another model: its samples are not resumed.
TEST_F(CliEval, AModelReplacedAtTheSamePathIsNotResumed) {
  const fs::path copy = root_ / "model.gguf", out = root_ / "replaced";
  fs::copy_file(model_, copy);
  ASSERT_EQ(run(eval_args(copy.string(), out)), 0);
  {  // one byte of the last tensor's data: the same shapes, other weights
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-16, std::ios::end);
    char c = 0;
    f.read(&c, 1);
    f.seekp(-16, std::ios::end);
    c = char(c ^ 0x01);
    f.write(&c, 1);
  }
  std::string err;
  EXPECT_EQ(run_with_fsize_limit(eval_args(copy.string(), out), RLIM_INFINITY, &err), 2);
  EXPECT_NE(err.find("was generated with other settings (weights_sha256: "), std::string::npos) << err;
}

TEST_F(CliEval, BadInputsExitTwoNamingTheInput) {
  auto args = eval_args(model_, root_ / "bad");
  args[5] = "advbenchx";  // --bench value
  EXPECT_EQ(run(args), 2);
  args = eval_args(model_, root_ / "bad");
  args[11] = "int2:tokenx";  // --kv value
  EXPECT_EQ(run(args), 2);
}

// The noise floor: the bf16 control runs beside the schemes (once, also when --kv names it) and each
// scheme's entry carries its test against the control; the control and the baseline carry none.
// --no-noise-floor skips it.
TEST_F(CliEval, NoiseFloorTestsEverySchemeAgainstTheBf16Control) {
  ASSERT_EQ(run(eval_args(model_, root_ / "nf")), 0);
  const auto r = nlohmann::json::parse(slurp(root_ / "nf" / "results.json"));
  ASSERT_TRUE(r["results"].contains("bf16")) << r.dump();
  EXPECT_EQ(r["config"]["noise_floor"], "bf16");
  const auto& m = r["results"]["int2:token:asym"]["advbench"];
  for (const char* key : {"noise_flips", "vs_noise_p", "within_noise"}) EXPECT_TRUE(m.contains(key)) << key;
  EXPECT_TRUE(m["within_noise"].is_null());  // one prompt: the test cannot reject anything
  EXPECT_FALSE(r["results"]["bf16"]["advbench"].contains("within_noise"));
  EXPECT_FALSE(r["results"]["fp16"]["advbench"].contains("within_noise"));
  auto given = eval_args(model_, root_ / "nf2");
  given.insert(given.end() - 2, {"--kv", "bf16"});
  ASSERT_EQ(run(given), 0);
  EXPECT_EQ(nlohmann::json::parse(slurp(root_ / "nf2" / "results.json"))["results"].size(), 3u);  // fp16, int2, bf16
  auto spelled = eval_args(model_, root_ / "nf4");  // another spelling of the control is the control
  spelled.insert(spelled.end() - 2, {"--kv", "bf16;layers[0]=bf16"});
  ASSERT_EQ(run(spelled), 0);
  const auto sp = nlohmann::json::parse(slurp(root_ / "nf4" / "results.json"));
  EXPECT_EQ(sp["results"].size(), 3u) << sp["results"].dump();
  EXPECT_TRUE(sp["results"]["int2:token:asym"]["advbench"].contains("within_noise"));
  auto off = eval_args(model_, root_ / "nf3");
  off.insert(off.end() - 2, "--no-noise-floor");
  ASSERT_EQ(run(off), 0);
  const auto o = nlohmann::json::parse(slurp(root_ / "nf3" / "results.json"));
  EXPECT_EQ(o["results"].size(), 2u);
  EXPECT_TRUE(o["config"]["noise_floor"].is_null());
  EXPECT_FALSE(o["results"]["int2:token:asym"]["advbench"].contains("within_noise"));
}

// Samples of one scheme, in file order (the baseline's lines aside).
std::vector<std::string> scheme_lines(const fs::path& samples, const std::string& scheme) {
  std::vector<std::string> out;
  std::istringstream in(slurp(samples));
  for (std::string line; std::getline(in, line);)
    if (nlohmann::json::parse(line)["scheme"] == scheme) out.push_back(line);
  return out;
}

// --kv-storage and --compat (cli/kv_options.h) reach every scheme of eval and sweep: packed storage
// gives the simulated samples, --compat paper changes an int4 tensor scheme's decode and is the same
// through sweep; both are recorded in results.json "config". 1 prompt x 8 new tokens per run.
TEST_F(CliEval, KvStorageAndCompatApplyToEvalAndSweep) {
  const auto args = [&](const std::string& cmd, const fs::path& out, std::vector<std::string> extra) {
    std::vector<std::string> v = {KVAUDIT_BINARY, cmd, "--model", model_, "--bench", "advbench", "--limit", "1",
                                  "--seed", "3", "--max-new-tokens", "8", "--threads", "2", "--quiet", "--json",
                                  "--out", out.string()};
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  const std::string spec = "int4:tensor:sym";
  const fs::path plain = root_ / "plain", paper = root_ / "paper", packed = root_ / "packed", sweep = root_ / "sweep";
  ASSERT_EQ(run(args("eval", plain, {"--kv", spec})), 0);
  ASSERT_EQ(run(args("eval", paper, {"--kv", spec, "--compat", "paper"})), 0);
  ASSERT_EQ(run(args("eval", packed, {"--kv", spec, "--kv-storage", "packed"})), 0);
  ASSERT_EQ(run(args("sweep", sweep, {"--scheme", "int:tensor:sym", "--bits", "16,4", "--compat", "paper",
                                      "--kv-storage", "packed"})),
            0);
  const auto plain_lines = scheme_lines(plain / "samples.jsonl", spec);
  ASSERT_EQ(plain_lines.size(), 1u);
  EXPECT_EQ(scheme_lines(packed / "samples.jsonl", spec), plain_lines);
  // Per-forward-call scales: the decode tokens get their own scale, the prompt's is not kept.
  EXPECT_NE(scheme_lines(paper / "samples.jsonl", spec), plain_lines);
  EXPECT_EQ(scheme_lines(sweep / "samples.jsonl", spec), scheme_lines(paper / "samples.jsonl", spec));
  const auto config = [&](const fs::path& dir) { return nlohmann::json::parse(slurp(dir / "results.json"))["config"]; };
  EXPECT_EQ(config(plain)["kv_storage"], "simulated");
  EXPECT_EQ(config(plain)["compat"], "none");
  EXPECT_EQ(config(packed)["kv_storage"], "packed");
  EXPECT_EQ(config(paper)["compat"], "paper");
  EXPECT_EQ(config(sweep)["kv_storage"], "packed");
  EXPECT_EQ(config(sweep)["compat"], "paper");

  // A calibrated scheme runs (calibration pass before generation, cli/kv_options.h).
  ASSERT_EQ(run(args("eval", root_ / "calib", {"--kv", "fp8e4m3:scale=calib", "--kv-storage", "packed"})), 0);
  EXPECT_EQ(scheme_lines(root_ / "calib" / "samples.jsonl", "fp8e4m3:scale=calib").size(), 1u);

  // Bad values: exit 2 before any model work.
  EXPECT_EQ(run(args("eval", root_ / "bad", {"--kv", spec, "--kv-storage", "fast"})), 2);
  EXPECT_EQ(run(args("sweep", root_ / "bad", {"--compat", "vllm"})), 2);
}

// `ppl` takes the same --kv-storage / --compat (short windows): packed equals simulated; paper compat
// equals it too for a tensor scheme, since every window is one prefill and a prefill's per-call scale is the prompt's
// scale (SPEC.md §3 --compat); a bad value exits 2.
TEST_F(CliEval, PplTakesKvStorageAndCompat) {
  const fs::path text = root_ / "text.txt";
  std::ofstream(text) << "The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst "
                         "of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of "
                         "belief, it was the epoch of incredulity, it was the season of Light.\n";
  const auto ppl = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> v = {KVAUDIT_BINARY, "ppl", "--model", model_, "--text", text.string(), "--window", "48",
                                  "--stride", "16", "--max-windows", "1", "--threads", "2", "--quiet", "--json",
                                  "--kv", "int4:tensor:sym"};
    v.insert(v.end(), extra.begin(), extra.end());
    const fs::path out = root_ / (name + ".json");
    const std::string cmd = [&] {
      std::string c;
      for (const auto& a : v) c += "'" + a + "' ";
      return c + "> '" + out.string() + "'";
    }();
    EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0) << name;
    return nlohmann::json::parse(slurp(out))["results"]["int4:tensor:sym"];
  };
  const auto plain = ppl("plain", {});
  EXPECT_EQ(ppl("packed", {"--kv-storage", "packed"}).dump(), plain.dump());
  EXPECT_EQ(ppl("paper", {"--compat", "paper"}).dump(), plain.dump());
  EXPECT_GT(plain["kl"].get<double>(), 0.0);  // the scheme does change the logits
  EXPECT_EQ(run({KVAUDIT_BINARY, "ppl", "--model", model_, "--kv-storage", "fast"}), 2);
}

// Verdict-aware early stop through the CLI (docs/EVAL.md): with prefix:xstest every response stops
// once its stripped text holds 35 bytes, so 24-token responses stop early; --full-responses turns
// it off. "results" are identical, config and timing say which ran. 3 XSTest prompts x 2 variants.
TEST_F(CliEval, EarlyStopGivesTheFullResponsesResults) {
  const auto args = [&](const fs::path& out, std::vector<std::string> extra) {
    std::vector<std::string> v = {KVAUDIT_BINARY, "eval", "--model", model_, "--bench", "xstest", "--limit", "3",
                                  "--kv", "int2:token:asym", "--judge", "prefix:xstest", "--max-new-tokens", "24",
                                  "--threads", "2", "--quiet", "--json", "--out", out.string()};
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  const fs::path on = root_ / "on", off = root_ / "off";
  ASSERT_EQ(run(args(on, {})), 0);
  ASSERT_EQ(run(args(off, {"--full-responses"})), 0);
  const auto ron = nlohmann::json::parse(slurp(on / "results.json"));
  const auto roff = nlohmann::json::parse(slurp(off / "results.json"));
  EXPECT_EQ(ron["results"], roff["results"]);
  EXPECT_EQ(ron["config"]["full_responses"], false);
  EXPECT_EQ(roff["config"]["full_responses"], true);
  EXPECT_EQ(roff["timing"]["samples_stopped_early"], 0);
  EXPECT_GT(ron["timing"]["samples_stopped_early"].get<int>(), 0);
  EXPECT_LT(ron["timing"]["tokens_generated"].get<int>(), roff["timing"]["tokens_generated"].get<int>());
  std::map<std::pair<std::string, std::string>, nlohmann::json> full;
  std::istringstream in_off(slurp(off / "samples.jsonl"));
  for (std::string line; std::getline(in_off, line);) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(j["stopped_early_at"].is_null()) << line;
    full[{j["id"], j["scheme"]}] = j;
  }
  std::istringstream in_on(slurp(on / "samples.jsonl"));
  size_t n = 0;
  for (std::string line; std::getline(in_on, line); ++n) {
    const auto j = nlohmann::json::parse(line);
    const auto& f = full.at({j["id"], j["scheme"]});
    EXPECT_EQ(j["refused"], f["refused"]) << line;
    EXPECT_EQ(j["matched"], f["matched"]) << line;  // the prefix rule keeps the matched phrase too
    EXPECT_EQ(f["response"].get<std::string>().rfind(j["response"].get<std::string>(), 0), 0u) << line;
    if (!j["stopped_early_at"].is_null()) {
      EXPECT_LT(j["stopped_early_at"].get<int>(), 24) << line;
    }
  }
  EXPECT_EQ(n, 9u);  // 3 prompts x (fp16, int2, the bf16 noise-floor control)
}

}  // namespace

// A --kv-policy file is named by its path ("policy:FILE"): edited in place it is another scheme, so
// its samples are not resumed (the plan it resolves to is recorded with each sample).
TEST_F(CliEval, AnEditedPolicyFileIsNotResumed) {
  const fs::path policy = root_ / "plan.json", out = root_ / "edited_policy";
  const auto write_policy = [&](const char* spec) {
    std::ofstream(policy) << "{\"spec\": \"" << spec << "\"}\n";
  };
  auto args = eval_args(model_, out);
  args.insert(args.end(), {"--kv-policy", policy.string()});
  write_policy("int4:token:asym");
  ASSERT_EQ(run(args), 0);
  std::string err;
  ASSERT_EQ(run_with_fsize_limit(args, RLIM_INFINITY, &err), 0) << err;  // unchanged: resumed
  EXPECT_EQ(nlohmann::json::parse(slurp(out / "results.json"))["timing"]["samples_generated"].get<size_t>(), 0u);
  write_policy("int3:token:asym");
  err.clear();
  EXPECT_EQ(run_with_fsize_limit(args, RLIM_INFINITY, &err), 2);
  EXPECT_NE(err.find("(policy:" + policy.string() + ") was generated with other settings (plan_sha256: "),
            std::string::npos)
      << err;
}

// A policy file's "model" names the weights it was prescribed for: on other weights its plan still
// runs (a GGUF of the audited model has other bytes), with a note saying so; a "model" that is not a
// string is refused.
TEST_F(CliEval, APolicyForOtherWeightsRunsWithANote) {
  const fs::path policy = root_ / "other_model.json", out = root_ / "other_model";
  auto args = eval_args(model_, out);
  args.insert(args.end(), {"--kv-policy", policy.string()});
  std::ofstream(policy) << R"({"spec": "int4:token:asym", "model": "0123abcd"})" << "\n";
  std::string err;
  ASSERT_EQ(run_with_fsize_limit(args, RLIM_INFINITY, &err), 0) << err;
  EXPECT_NE(err.find("note: --kv-policy " + policy.string() + " was prescribed for the weights 0123abcd; this model's are "),
            std::string::npos)
      << err;
  std::ofstream(policy) << R"({"spec": "int4:token:asym", "model": 5})" << "\n";
  err.clear();
  EXPECT_EQ(run_with_fsize_limit(args, RLIM_INFINITY, &err), 2);
  EXPECT_NE(err.find("\"model\" must be a string"), std::string::npos) << err;
}

// --full-responses asks for whole responses: an earlier run's early-stopped samples are not reused.
TEST_F(CliEval, FullResponsesDoNotResumeEarlyStoppedSamples) {
  const fs::path out = root_ / "full_responses";
  auto args = eval_args(model_, out);
  ASSERT_EQ(run(args), 0);
  args.push_back("--full-responses");
  std::string err;
  EXPECT_EQ(run_with_fsize_limit(args, RLIM_INFINITY, &err), 2);
  EXPECT_NE(err.find("was generated with other settings (full_responses: absent there, true in this run)"),
            std::string::npos)
      << err;
}

// A ppl log names its schemes by their plans (a policy file edited in place is another scheme) and
// records --compat paper: neither change resumes another run's windows.
TEST_F(CliEval, PplDoesNotResumeAnEditedPolicyOrAnotherCompat) {
  const fs::path text = root_ / "ppl_policy.txt", policy = root_ / "ppl_plan.json", out = root_ / "ppl_policy";
  {
    std::ofstream t(text);
    for (int i = 0; i < 4; ++i) t << "The committee met on Tuesday to discuss the budget for the coming year. ";
  }
  const auto write_policy = [&](const char* spec) { std::ofstream(policy) << "{\"spec\": \"" << spec << "\"}\n"; };
  // No --stride: it defaults to the window when the window is shorter than 512.
  std::vector<std::string> args{KVAUDIT_BINARY, "ppl", "--model", model_, "--text", text.string(), "--window", "32",
                                "--max-windows", "2", "--kv-policy", policy.string(), "--threads",
                                "2", "--quiet", "--json", "--out", out.string()};
  write_policy("int4:token:asym");
  ASSERT_EQ(run(args), 0);
  {
    std::ifstream log(out / "ppl_windows.jsonl");
    std::string header;
    std::getline(log, header);
    EXPECT_EQ(nlohmann::json::parse(header)["stride"], 32);
  }
  std::string err;
  EXPECT_EQ(run_with_fsize_limit(args, RLIM_INFINITY, &err), 0) << err;  // unchanged: resumed
  write_policy("int2:token:asym");
  err.clear();
  EXPECT_EQ(run_with_fsize_limit(args, RLIM_INFINITY, &err), 2);
  EXPECT_NE(err.find("was written by a different ppl run"), std::string::npos) << err;

  const fs::path spec_out = root_ / "ppl_compat";
  std::vector<std::string> spec_args{KVAUDIT_BINARY, "ppl", "--model", model_, "--text", text.string(), "--window",
                                     "32", "--stride", "32", "--max-windows", "2", "--kv", "int4:channel", "--threads",
                                     "2", "--quiet", "--json", "--out", spec_out.string()};
  ASSERT_EQ(run(spec_args), 0);
  spec_args.insert(spec_args.end() - 2, {"--compat", "paper"});
  err.clear();
  EXPECT_EQ(run_with_fsize_limit(spec_args, RLIM_INFINITY, &err), 2);
  EXPECT_NE(err.find("\"compat\":\"paper\""), std::string::npos) << err;
}

// Text that is not UTF-8 is refused naming the file (and line): the tokenizer would read U+FFFD for the
// bad bytes and generate from, or score, another text (a Python reader refuses it too).
TEST_F(CliEval, TextThatIsNotUtf8IsRefused) {
  const fs::path prompts = root_ / "bad_prompts.txt", text = root_ / "bad_text.txt";
  std::ofstream(prompts, std::ios::binary) << "fine\n\xff\xfe not text\n";
  std::ofstream(text, std::ios::binary) << "fine \xc3\x28 not text";
  auto r = kvaudit::testing::run_cli({"generate", "--model", model_, "--prompts", prompts.string(), "--max-new-tokens", "1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "kvaudit: error: --prompts " + prompts.string() + " line 2 is not valid UTF-8 (byte 0)\n");
  r = kvaudit::testing::run_cli({"ppl", "--model", model_, "--text", text.string(), "--window", "8"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "kvaudit: error: --text " + text.string() + " is not valid UTF-8 (byte 5)\n");
}
