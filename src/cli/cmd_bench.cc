// kvaudit bench (SPEC.md §7): prefill and decode tokens/s per batch size, with the decode
// memory-bandwidth bound measured in the same run (docs/PERFORMANCE.md explains the numbers).
#include <omp.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/kv_options.h"
#include "cli/token_list.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/throughput.h"
#include "kv/policy.h"
#include "model/memory_check.h"
#include "model/model.h"

namespace kvaudit::cli {
namespace {

struct BenchArgs {
  std::string model, batches = "1,32", device, weights_type;
  KvOptions kv;
  std::vector<std::string> kv_mix;  // --kv-mix: schemes sharing each batch
  bool random_weights = false, json = false, fp32_weights = false;
  int prompt_len = 128, gen = 32, threads = 0, repeat = 3;
};

void run_bench(const BenchArgs& a) {
  std::vector<int> batches;
  try {
    batches = parse_token_list(a.batches);
  } catch (const UsageError&) {
    usage_error("--batch: '{}' is not a list of batch sizes like 1,32", a.batches);
  }
  for (int b : batches)
    if (b < 1) usage_error("--batch: batch size {} must be >= 1", b);
  if (a.prompt_len < 1 || a.gen < 1 || a.repeat < 1) usage_error("bench: --prompt-len, --gen and --repeat must be >= 1");
  const engine::Device device = a.device.empty() ? engine::default_device() : engine::parse_device(a.device);
  model::LoadOptions lo;
  lo.random_weights = a.random_weights;
  lo.random_type = a.weights_type;
  lo.expand_f32 = a.fp32_weights;
  if (!a.weights_type.empty() && !a.random_weights) usage_error("--weights-type needs --random-weights");
  if (!a.kv_mix.empty() && (!a.kv.spec.empty() || !a.kv.policy.empty()))
    usage_error("--kv-mix excludes --kv and --kv-policy");
  require_scheme_for_storage(!a.kv_mix.empty() || !a.kv.spec.empty() || !a.kv.policy.empty(), a.kv);
  // One KvOptions per policy: --kv / --kv-policy, or each --kv-mix scheme with the storage flags.
  std::vector<KvOptions> kv_opts;
  for (const std::string& spec : a.kv_mix) kv_opts.push_back({spec, "", a.kv.storage, a.kv.compat});
  if (kv_opts.empty()) kv_opts.push_back(a.kv);
  for (const KvOptions& o : kv_opts)
    lo.compute_sha256 = lo.compute_sha256 || kv_needs_calibration(o);  // the calibration cache is keyed by the weights' sha256
  const double t_load = engine::now_seconds();
  const model::Model m = model::load_model(a.model, lo);
  const double load_s = engine::now_seconds() - t_load;
  auto backend = engine::make_backend(device, m, {a.threads});
  std::vector<std::shared_ptr<const kv::KvPolicy>> policies;
  std::string kv_name;
  for (const KvOptions& o : kv_opts) {
    policies.push_back(calibrate_if_needed(make_kv_policy(o, m.config.n_layers, m.weights_sha256), *backend, a.model));
    kv_name += (kv_name.empty() ? "" : " + ") + policies.back()->name();
  }
  if (policies.size() > 1) kv_name = fmt::format("{} schemes round-robin over each batch: {}", policies.size(), kv_name);

  // The bound is where the weights are read from: the host (the model as held, host memcpy) or
  // the device (its copy of the weights, a device-to-device copy).
  // On the CPU, the largest batch's caches and activations must fit beside the loaded weights: a
  // batch of 2,000,000 ended in std::bad_alloc (exit 1) or the OOM killer.
  if (backend->device() == engine::Device::kCpu)
    if (const auto avail = model::available_memory()) {
      const int64_t need = engine::cpu_run_bytes(m.config, *std::max_element(batches.begin(), batches.end()), a.prompt_len, a.gen);
      if (need > avail->bytes)
        usage_error("--batch {} --prompt-len {} --gen {}: the KV caches and activations need about {:.1f} GiB and {:.1f} "
                    "GiB is available ({}); use smaller values",
                    a.batches, a.prompt_len, a.gen, double(need) / double(int64_t(1) << 30),
                    double(avail->bytes) / double(int64_t(1) << 30), avail->source);
    }
  const int64_t resident = backend->resident_weight_bytes();
  const bool on_device = resident > 0;
  const int64_t weight_bytes = on_device ? resident : engine::decode_weight_bytes(m);
  const int64_t stored_bytes = engine::stored_weight_bytes(m);
  struct Row {
    int batch;
    double prefill, decode, generated;
    int64_t kv_bytes;
  };
  std::vector<Row> measured;
  for (int b : batches) {
    std::vector<engine::ThroughputResult> runs;
    for (int r = 0; r < a.repeat; ++r) runs.push_back(engine::measure_throughput(*backend, policies, b, a.prompt_len, a.gen));
    // Median of the repeats (the machine may be shared).
    auto median = [&](auto field) {
      std::vector<double> v;
      for (const auto& r : runs) v.push_back(r.*field);
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    measured.push_back({b, median(&engine::ThroughputResult::prefill_tok_s), median(&engine::ThroughputResult::decode_tok_s),
                        median(&engine::ThroughputResult::generated_tok_s), runs.front().kv_bytes});
  }
  // Peak RSS before the bandwidth probe, whose 512 MB of buffers are not the model's.
  const int64_t peak_rss = engine::peak_rss_bytes();
  const double bandwidth = on_device ? backend->memory_copy_bandwidth() : engine::measure_memcpy_bandwidth();
  const double step_bound_s = double(weight_bytes) / bandwidth;  // one decode step reads every weight once
  nlohmann::json rows = nlohmann::json::array();
  if (!a.json)
    fmt::print("model {} ({}), weights {}{} ({:.1f} MB, loaded in {:.1f} s), {} threads, kv {}\nweights read per decode step "
               "{:.1f} MB{}, {} bandwidth {:.2f} GB/s -> decode step >= {:.2f} ms\n{:>6} {:>14} {:>14} {:>14} {:>8} {:>10} {:>18}\n",
               m.path, m.config.arch, m.weights_dtype, a.fp32_weights ? " expanded to fp32" : "", stored_bytes / 1e6, load_s,
               omp_get_max_threads(), kv_name, weight_bytes / 1e6, on_device ? " on the device" : "",
               on_device ? "device copy" : "memcpy", bandwidth / 1e9, step_bound_s * 1e3, "batch",
               "prefill tok/s", "decode tok/s", "bound tok/s", "ratio", "KV MB", "with prefill tok/s");
  for (const Row& r : measured) {
    const double bound = double(r.batch) / step_bound_s;
    rows.push_back({{"batch", r.batch}, {"prefill_tok_s", r.prefill}, {"decode_tok_s", r.decode},
                    {"decode_bound_tok_s", bound}, {"decode_bound_ratio", r.decode / bound}, {"kv_bytes", r.kv_bytes},
                    {"generated_tok_s", r.generated}});
    if (!a.json)
      fmt::print("{:>6} {:>14.1f} {:>14.1f} {:>14.1f} {:>8.2f} {:>10.2f} {:>18.1f}\n", r.batch, r.prefill, r.decode, bound,
                 r.decode / bound, r.kv_bytes / 1e6, r.generated);
  }
  if (!a.json) fmt::print("peak RSS {:.1f} MB ({:.2f}x the stored weights)\n", peak_rss / 1e6, double(peak_rss) / double(stored_bytes));
  if (a.json)
    std::printf("%s\n", nlohmann::json{{"model", m.path}, {"arch", m.config.arch}, {"threads", omp_get_max_threads()},
                                       {"kv", kv_name}, {"prompt_len", a.prompt_len}, {"gen", a.gen},
                                       {"repeat", a.repeat}, {"weight_bytes_per_decode_step", weight_bytes},
                                       {"weights_dtype", m.weights_dtype}, {"fp32_weights", a.fp32_weights},
                                       {"stored_weight_bytes", stored_bytes}, {"load_s", load_s}, {"peak_rss_bytes", peak_rss},
                                       {"memcpy_bandwidth_bytes_s", bandwidth},
                                       {"bandwidth_of", on_device ? "device" : "host"}, {"results", rows}}
                            .dump(2)
                            .c_str());
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Prefill/decode throughput per batch size vs the memory-bandwidth bound");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("--model", a->model, kModelHelp)->required();
  cmd->add_flag("--random-weights", a->random_weights, "config.json only: deterministic random weights");
  cmd->add_option("--weights-type", a->weights_type,
                  "with --random-weights: store the matrices as this GGUF type (q4_k_m, q4_1, q8_0, f16, ...) in a "
                  "temporary file, mapped as a real GGUF is");
  cmd->add_flag("--fp32-weights", a->fp32_weights, "expand every weight to fp32 at load (the pre-issue-14 path)");
  cmd->add_option("--batch", a->batches, "comma-separated batch sizes (default 1,32)");
  cmd->add_option("--prompt-len", a->prompt_len, "prompt tokens per sequence (default 128)");
  cmd->add_option("--gen", a->gen, "decode steps (default 32)");
  cmd->add_option("--repeat", a->repeat, "runs per batch size; the median is reported (default 3)");
  add_kv_options(cmd, a->kv);
  cmd->add_option("--kv-mix", a->kv_mix,
                  "several KV schemes sharing each batch, sequence b taking scheme b mod count (e.g. --kv-mix fp16 "
                  "int4:token:asym kivi2); excludes --kv and --kv-policy");
  cmd->add_option("--device", a->device, "cpu|cuda (default: cuda when built with it)");
  add_threads_option(cmd, a->threads);
  cmd->add_flag("--json", a->json, "print the results as JSON");
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace kvaudit::cli
