// kvaudit ppl (SPEC.md §4, §7): perplexity of --text under the 16-bit baseline and each --kv scheme
// (window 2048, stride 512), the ratio to the baseline and the mean token KL to it.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/commands.h"
#include "cli/eval_pipeline.h"
#include "cli/kv_options.h"
#include "core/error.h"
#include "engine/engine.h"
#include "eval/benchmarks.h"
#include "eval/ppl_log.h"
#include "eval/ppl_runner.h"
#include "eval/progress.h"
#include "eval/samples.h"
#include "io/atomic_file.h"
#include "io/out_dir_lock.h"
#include "kv/policy.h"
#include "model/model.h"
#include "report/ppl_table.h"
#include "text/tokenizer.h"

namespace kvaudit::cli {
namespace {

struct PplArgs {
  std::string model, text, device, data, out;
  std::vector<std::string> kv, kv_policy;
  KvOptions kv_storage;  // --kv-storage, --compat: applied to every --kv scheme
  size_t window = eval::kPplWindow, stride = eval::kPplStride, max_windows = 0, score_from = 0;
  int threads = 0;
  bool random_weights = false, quiet = false, json = false;
};

void run_ppl(const PplArgs& a) {
  std::optional<io::OutDirLock> lock;  // one writer per --out (io/out_dir_lock.h)
  if (!a.out.empty()) lock.emplace(a.out);
  // Default text: the staged WikiText-2 test set (datasets/wikitext2_test/SOURCE.md).
  const std::string text_path =
      a.text.empty() ? (std::filesystem::path(eval::resolve_data_dir(a.data)) / "wikitext2_test" / "wikitext2_test.txt").string()
                     : a.text;
  if (a.stride == 0 || a.window < a.stride) usage_error("--window ({}) must be >= --stride ({}) >= 1", a.window, a.stride);
  if (a.score_from + 1 >= a.window)
    usage_error("--score-from ({}) must be below --window - 1 ({}): no target would be scored", a.score_from,
                a.window - 1);
  make_kv_policy({"", "", a.kv_storage.storage, a.kv_storage.compat}, 0);  // bad values fail before any work
  const engine::Device device = a.device.empty() ? engine::default_device() : engine::parse_device(a.device);
  model::LoadOptions lo;
  lo.random_weights = a.random_weights;
  lo.compute_sha256 = std::any_of(a.kv.begin(), a.kv.end(), [](const std::string& spec) {
    return kv_needs_calibration({spec, "", "", ""});  // the calibration cache's key
  }) || std::any_of(a.kv_policy.begin(), a.kv_policy.end(), [](const std::string& f) {
    return kv_needs_calibration({"", f, "", ""});
  });
  const model::Model m = model::load_model(a.model, lo);
  const text::Tokenizer tok = text::Tokenizer::load_for_model(a.model);
  // As the Hugging Face perplexity guide: the whole text encoded once, special tokens added.
  const std::vector<int> tokens = tok.encode(io::read_file(text_path), true);
  const eval::PplOptions opt{a.window, a.stride, a.max_windows, a.score_from};
  eval::require_ppl_windows(tokens.size(), opt, text_path);
  if (const size_t gap = eval::ppl_gap_per_window(opt); a.score_from > 0 && gap > 0 && !a.quiet &&
                                                        eval::ppl_window_count(tokens.size(), opt) > 1)
    std::fprintf(stderr,
                 "note: --score-from %zu with --window %zu --stride %zu leaves %zu targets unscored before each window "
                 "after the first (llama-perplexity's mode); the count scored is printed with the results\n",
                 a.score_from, a.window, a.stride, gap);
  auto backend = engine::make_backend(device, m, {a.threads});
  const std::vector<eval::SchemeRun> schemes = make_scheme_runs(a.kv, a.kv_storage, *backend, a.model, a.kv_policy);
  eval::Progress progress(a.quiet ? nullptr : stderr, ::isatty(fileno(stderr)) != 0, "ppl",
                          eval::ppl_window_count(tokens.size(), opt) * schemes.size(), "window-passes");
  report::PplRun run{text_path, tokens.size(), eval::ppl_window_count(tokens.size(), opt), a.window, a.stride, {}, {}};
  for (const auto& s : schemes) run.schemes.push_back(s.name);
  if (a.out.empty())
    run.results = eval::run_perplexity(*backend, tokens, schemes, opt, &progress);
  else  // each finished window is appended to DIR/ppl_windows.jsonl; a rerun computes only the others
    run.results = eval::run_perplexity_logged(*backend, tokens, schemes, opt, &progress,
                                              (std::filesystem::path(a.out) / "ppl_windows.jsonl").string(),
                                              eval::ppl_log_header(a.model, text_path, tokens, opt, schemes, device));
  progress.finish();
  if (!a.out.empty()) io::write_file_atomic((std::filesystem::path(a.out) / "ppl.json").string(), report::ppl_json(run));
  const std::string out = a.json ? report::ppl_json(run) : report::format_ppl_table(run);
  std::fputs(out.c_str(), stdout);
}

}  // namespace

void add_ppl(CLI::App& app) {
  auto* cmd = app.add_subcommand("ppl", "Perplexity and KL to the 16-bit baseline under KV schemes");
  auto a = std::make_shared<PplArgs>();
  cmd->add_option("--model", a->model, kModelHelp)->required();
  cmd->add_option("--text", a->text, "text file (default: the staged WikiText-2 test set)");
  cmd->add_option("--data", a->data, "datasets directory, for the default --text (so not with --text)")
      ->excludes(cmd->get_option("--text"));
  cmd->add_option("--kv", a->kv, "KV scheme spec; repeat for several; the fp16 baseline always runs")->check(kNonEmpty);
  cmd->add_option("--kv-policy", a->kv_policy, "per-layer KV policy JSON file (e.g. an audit's policy.json); repeat for several");
  add_kv_storage_options(cmd, a->kv_storage);
  cmd->add_option("--window", a->window, "tokens per window (default 2048)")->check(kPositiveCount);
  cmd->add_option("--stride", a->stride, "window stride (default 512)")->check(kPositiveCount);
  cmd->add_option("--max-windows", a->max_windows, "score only the first N windows (0 = all)")->check(kCount);
  cmd->add_option("--score-from", a->score_from,
                  "score only targets predicted from window positions >= N (llama-perplexity: "
                  "--window 512 --stride 512 --score-from 256)")
      ->check(kCount);
  cmd->add_option("--out", a->out,
                  "directory for ppl.json and ppl_windows.jsonl (each finished window; a rerun resumes from it)");
  cmd->add_option("--device", a->device, "cpu|cuda");
  add_threads_option(cmd, a->threads);
  cmd->add_flag("--random-weights", a->random_weights, "config.json only: deterministic random weights");
  cmd->add_flag("--quiet", a->quiet, "no progress output");
  cmd->add_flag("--json", a->json, "JSON output");
  cmd->callback([a] { run_ppl(*a); });
}

}  // namespace kvaudit::cli
