// kvaudit logits (SPEC.md §7): one forward pass over the given token ids with prefill semantics
// (position t attends to the stored, possibly quantized, K/V of positions <= t) and the float32
// logits [T, n_vocab] written as .npy.
#include "cli/commands.h"
#include "cli/kv_options.h"
#include "cli/token_list.h"
#include "core/error.h"
#include "engine/engine.h"
#include "io/npy.h"
#include "model/model.h"

namespace kvaudit::cli {
namespace {

struct LogitsArgs {
  std::string model, tokens, out, device;  // device "": engine::default_device()
  KvOptions kv;
  bool random_weights = false;
  int threads = 0;
};

void run_logits(const LogitsArgs& a) {
  const std::vector<int> tokens = parse_token_list(a.tokens);
  const engine::Device device = a.device.empty() ? engine::default_device() : engine::parse_device(a.device);
  model::LoadOptions lo;
  lo.random_weights = a.random_weights;
  require_scheme_for_storage(!a.kv.spec.empty() || !a.kv.policy.empty(), a.kv);
  lo.compute_sha256 = kv_needs_calibration(a.kv);  // the calibration cache's key
  const model::Model m = model::load_model(a.model, lo);
  auto policy = make_kv_policy(a.kv, m.config.n_layers, m.weights_sha256);
  auto backend = engine::make_backend(device, m, {a.threads});
  policy = calibrate_if_needed(std::move(policy), *backend, a.model);
  engine::Sequence seq(m.config, policy);
  const engine::SeqInput in{&seq, tokens, true};
  const engine::Logits logits = backend->forward({&in, 1});
  io::write_npy(a.out, {int64_t(tokens.size()), logits.n_vocab}, logits.data);
}

}  // namespace

void add_logits(CLI::App& app) {
  auto* cmd = app.add_subcommand("logits", "Forward the token ids (prefill) and write float32 logits [T, vocab] as .npy");
  auto a = std::make_shared<LogitsArgs>();
  cmd->add_option("--model", a->model, kModelHelp)->required();
  cmd->add_option("--tokens", a->tokens, "comma-separated token ids, e.g. 1,2,3")->required();
  add_kv_options(cmd, a->kv);
  cmd->add_option("--out", a->out, "output .npy file")->required();
  cmd->add_option("--device", a->device, "cpu|cuda (default: cuda when built with it)");
  cmd->add_flag("--random-weights", a->random_weights, "config.json only: deterministic random weights");
  add_threads_option(cmd, a->threads);
  cmd->callback([a] { run_logits(*a); });
}

}  // namespace kvaudit::cli
