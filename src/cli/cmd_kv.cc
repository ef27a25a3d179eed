// `kvaudit kv` (SPEC.md §3 end): apply a scheme to an activation dump [tokens, H·D], the whole input
// as one prefill, and report MSE, SQNR and bytes/token.
#include <cmath>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/error.h"
#include "core/json_keys.h"
#include "io/atomic_file.h"
#include "io/npy.h"
#include "kv/memory.h"
#include "kv/policy.h"

namespace kvaudit::cli {
namespace {

struct KvArgs {
  std::string scheme, role, in, out, storage = "simulated", compat = "none", calib;
  int heads = 1;
};

void run_kv(const KvArgs& a) {
  using namespace kvaudit::kv;
  KvPolicy policy = KvPolicy::parse(a.scheme);
  if (a.role != "k" && a.role != "v") usage_error("--role must be k or v, got '{}'", a.role);
  const Role role = a.role == "k" ? Role::K : Role::V;
  policy.set_storage(a.storage == "packed" ? Storage::kPacked : Storage::kSimulated);
  policy.set_compat_paper(a.compat == "paper");
  if (!a.calib.empty() && !policy.needs_calibration())
    usage_error("--calib {}: '{}' needs no calibration (only fp8 scale=calib, nuq and +protect schemes do)", a.calib,
                a.scheme);
  const io::NpyArray x = io::read_npy(a.in);
  if (x.shape.size() != 2) usage_error("{}: expected a 2-D array [tokens, H*D], got {} dimensions", a.in, x.shape.size());
  const int64_t tokens = x.shape[0], width = x.shape[1];
  if (a.heads < 1 || width % a.heads != 0 || width == 0)
    usage_error("--heads {} does not divide the width {} of {}", a.heads, width, a.in);
  const CacheGeometry g{a.heads, int(width / a.heads)};
  if (tokens == 0) usage_error("{}: no rows (a [0, {}] array): nothing to quantize", a.in, width);
  for (size_t i = 0; i < x.data.size(); ++i)
    if (!std::isfinite(x.data[i]))
      usage_error("{}: row {} column {} is {} (a KV dump holds finite values)", a.in, int64_t(i) / width,
                  int64_t(i) % width, x.data[i]);
  const SchemeSpec s = policy.scheme(0, role);
  // kv applies layer 0's scheme for --role: a spec that quantizes only other layers or the other role
  // would run as the 16-bit cache and report a perfect score.
  if (to_string(s) == "fp16" && policy.name() != "fp16")
    usage_error("--scheme '{}' leaves layer 0's {} in 16 bits (kv applies layer 0's scheme for --role {}): nothing "
                "would be quantized",
                a.scheme, a.role == "k" ? "keys" : "values", a.role);
  bool calibrated_on_input = false;
  if (policy.needs_calibration()) {
    auto c = std::make_shared<Calibration>();
    if (!a.calib.empty()) {
      const std::string text = io::read_file(a.calib);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(text);
      } catch (const nlohmann::json::exception& e) {
        usage_error("--calib file '{}' is not valid JSON: {}", a.calib, e.what());
      }
      if (const auto key = first_duplicate_key(text)) usage_error("--calib file '{}' states the key '{}' twice", a.calib, *key);
      try {
        *c = Calibration::from_json(j);
      } catch (const nlohmann::json::exception& e) {
        usage_error("--calib file '{}': {}", a.calib, e.what());
      }
    } else {  // a debugging window: the dump calibrates itself unless --calib is given
      c->observe(0, role, role == Role::K && s.pre_rope, x.data.data(), tokens, int(width));
      calibrated_on_input = true;
    }
    policy.calibrate(c);
  }
  auto cache = policy.make_cache(0, role, g);
  cache->append(x.data.data(), tokens);
  const float* y = cache->rows();  // [tokens, width]
  double err = 0, sig = 0;
  for (int64_t i = 0; i < tokens * width; ++i) {
    const double d = double(y[i]) - double(x.data[i]);
    err += d * d;
    sig += double(x.data[i]) * double(x.data[i]);
  }
  const double n = double(tokens * width);
  const double mse = n > 0 ? err / n : NAN;
  const double sqnr = err > 0 ? 10.0 * std::log10(sig / err) : INFINITY;
  io::write_npy(a.out, x.shape, std::span<const float>(y, size_t(tokens * width)));
  fmt::print("scheme: {}\nrole: {}\ntokens: {}\nwidth: {} ({} heads x {})\n", to_string(s), a.role, tokens, width,
             g.n_kv_heads, g.head_dim);
  if (calibrated_on_input) fmt::print("calibration: the input itself\n");
  fmt::print("mse: {:.6g}\nsqnr_db: {:.4f}\nbytes_per_token: {:.4f}\nbytes_per_token_formula: {:.4f}\n", mse, sqnr,
             tokens > 0 ? double(cache->bytes()) / double(tokens) : 0.0, bytes_per_token(s, role, g, tokens));
}

}  // namespace

void add_kv(CLI::App& app) {
  auto a = std::make_shared<KvArgs>();
  auto* cmd = app.add_subcommand("kv", "apply a KV scheme to an activation dump [tokens, H*D] (SPEC.md §3)");
  cmd->add_option("--scheme", a->scheme, "scheme spec, e.g. int4:token:asym, kivi2, fp8e5m2, q4_0")->required();
  cmd->add_option("--role", a->role, "k or v (keys and values quantize differently: kivi, @pre)")
      ->required()
      ->check(CLI::IsMember({"k", "v"}));
  cmd->add_option("--in", a->in, "float32 .npy [tokens, H*D]")->required();
  cmd->add_option("--out", a->out, "dequantized result .npy")->required();
  cmd->add_option("--heads", a->heads, "number of KV heads H (default 1)");
  cmd->add_option("--storage", a->storage, "simulated or packed")->check(CLI::IsMember({"simulated", "packed"}));
  cmd->add_option("--compat", a->compat, "paper: per-call scales for tensor/channel")->check(CLI::IsMember({"none", "paper"}));
  cmd->add_option("--calib", a->calib, "calibration JSON (default: calibrate on the input)");
  cmd->callback([a] { run_kv(*a); });
}

}  // namespace kvaudit::cli
