// kvaudit generate (SPEC.md §7, §4): greedy chat completions, batched with continuous batching.
// --prompt: the reply streams to stdout. --prompts FILE (even of one prompt): one JSON line per prompt, in
// input order: {"id", "prompt", "response", "finish": "stop"|"length", "n_tokens"}.
// --tokens 1,2,3 bypasses the tokenizer and prints {"new_ids": [...]}.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/kv_options.h"
#include "cli/token_list.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "eval/chat_prompt.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace kvaudit::cli {
namespace {

struct GenerateArgs {
  std::string model, prompt, prompts_file, tokens, device;
  std::optional<std::string> system;  // "" too: an empty system turn
  KvOptions kv;
  bool raw = false, random_weights = false;
  int max_new_tokens = 256, batch_size = 0, threads = 0;  // batch_size 0: the backend's
};

// --prompts FILE: a .jsonl file holds one JSON string or {"prompt": ...} per line; any other file
// one prompt per non-empty line.
std::vector<std::string> read_prompts(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) usage_error("--prompts '{}' is a directory, not a file", path);
  std::ifstream f(path, std::ios::binary);
  if (!f) usage_error("--prompts: cannot open '{}'", path);
  const bool jsonl = path.size() >= 6 && path.substr(path.size() - 6) == ".jsonl";
  std::vector<std::string> out;
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    require_utf8(line, fmt::format("--prompts {} line {}", path, n));
    if (!jsonl) {
      out.push_back(line);
      continue;
    }
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_string()) out.push_back(j.get<std::string>());
    else if (j.is_object() && j.contains("prompt") && j["prompt"].is_string()) out.push_back(j["prompt"].get<std::string>());
    else usage_error("--prompts: {} line {}: expected a JSON string or an object with a \"prompt\" string", path, n);
  }
  if (out.empty()) usage_error("--prompts: '{}' holds no prompt", path);
  return out;
}

const char* finish_name(engine::FinishReason r) { return r == engine::FinishReason::kStop ? "stop" : "length"; }

void run_generate(const GenerateArgs& a) {
  const int n_inputs = int(!a.prompt.empty()) + int(!a.prompts_file.empty()) + int(!a.tokens.empty());
  if (n_inputs != 1) usage_error("generate: give exactly one of --prompt, --prompts FILE, --tokens");
  const engine::Device device = a.device.empty() ? engine::default_device() : engine::parse_device(a.device);
  const std::vector<int> token_prompt = a.tokens.empty() ? std::vector<int>{} : parse_token_list(a.tokens);
  model::LoadOptions lo;
  lo.random_weights = a.random_weights;
  require_scheme_for_storage(!a.kv.spec.empty() || !a.kv.policy.empty(), a.kv);
  lo.compute_sha256 = kv_needs_calibration(a.kv);  // the calibration cache's key
  const model::Model m = model::load_model(a.model, lo);
  auto policy = make_kv_policy(a.kv, m.config.n_layers, m.weights_sha256);
  auto backend = engine::make_backend(device, m, {a.threads});
  policy = calibrate_if_needed(std::move(policy), *backend, a.model);

  engine::GenerateOptions opt;
  opt.max_new_tokens = a.max_new_tokens;
  opt.batch_size = a.batch_size;
  opt.stop_ids = m.config.eos_ids;

  if (!token_prompt.empty()) {  // token ids in, token ids out: no tokenizer needed
    const std::vector<engine::GenerateRequest> reqs = {{token_prompt, policy}};
    const auto res = engine::generate(*backend, reqs, opt);
    std::printf("%s\n", nlohmann::json{{"new_ids", res[0].tokens}, {"finish", finish_name(res[0].finish)}}.dump().c_str());
    return;
  }

  const text::Tokenizer tok = text::Tokenizer::load_for_model(a.model);
  for (int id : tok.eos_ids())  // end-of-turn ids (<|im_end|>, <|eot_id|>, ...) stop too
    if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), id) == opt.stop_ids.end()) opt.stop_ids.push_back(id);
  const std::vector<std::string> prompts = a.prompt.empty() ? read_prompts(a.prompts_file) : std::vector{a.prompt};
  std::vector<engine::GenerateRequest> reqs;
  for (const std::string& p : prompts) reqs.push_back({eval::encode_chat_prompt(tok, p, a.system, a.raw, a.model), policy});

  if (!a.prompt.empty()) {  // --prompt: stream the reply as it is produced (--prompts FILE: JSON lines, always)
    text::StreamDecoder dec(tok, true);
    opt.on_token = [&](size_t, int t) {
      std::fputs(dec.push(t).c_str(), stdout);
      std::fflush(stdout);
    };
    engine::generate(*backend, reqs, opt);
    std::printf("%s\n", dec.flush().c_str());
    return;
  }
  const auto res = engine::generate(*backend, reqs, opt);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const nlohmann::json line = {{"id", i},
                                 {"prompt", prompts[i]},
                                 {"response", tok.decode(res[i].tokens, true)},
                                 {"finish", finish_name(res[i].finish)},
                                 {"n_tokens", res[i].tokens.size()}};
    std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
}

}  // namespace

void add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Greedy chat completions, batched; streams the reply to --prompt, JSON lines for --prompts FILE");
  auto a = std::make_shared<GenerateArgs>();
  cmd->add_option("--model", a->model, kModelHelp)->required();
  auto* prompt = cmd->add_option("--prompt", a->prompt, "one prompt");
  cmd->add_option("--prompts", a->prompts_file, "file of prompts: one per line, or .jsonl strings / {\"prompt\": ...}");
  auto* tokens = cmd->add_option("--tokens", a->tokens, "prompt as comma-separated token ids (no tokenizer, no template)");
  add_kv_options(cmd, a->kv);
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "default 256")->check(kPositiveInt);
  auto* raw = cmd->add_flag("--raw", a->raw, "no chat template: the prompt text as is (so no --system)");
  auto* system = cmd->add_option("--system", a->system, "system message (\"\": an empty system turn; left out, the chat template's default)");
  raw->excludes(system);
  tokens->excludes(raw);
  tokens->excludes(system);
  add_batch_size_option(cmd, a->batch_size);
  cmd->add_option("--device", a->device, "cpu|cuda (default: cuda when built with it)");
  add_threads_option(cmd, a->threads);
  cmd->add_flag("--random-weights", a->random_weights, "config.json only: deterministic random weights");
  cmd->callback([a, prompt] {
    if (prompt->count() > 0 && a->prompt.empty()) usage_error("--prompt is empty: give the text to complete");
    require_utf8(a->prompt, "--prompt");
    require_utf8(a->system.value_or(""), "--system");
    run_generate(*a);
  });
}

}  // namespace kvaudit::cli
