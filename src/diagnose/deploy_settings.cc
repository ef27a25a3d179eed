#include "diagnose/deploy_settings.h"

#include <fmt/format.h>

namespace kvaudit::diagnose {
namespace {

using kv::SchemeKind;

// llama.cpp's cache type name for a scheme it implements as stated, else "".
std::string llama_cpp_type(const kv::SchemeSpec& s) {
  if (s.pre_rope || s.had || s.protect != kv::ProtectUnit::kNone) return "";
  switch (s.kind) {
    case SchemeKind::kFp16: return "f16";
    case SchemeKind::kBf16: return "bf16";
    case SchemeKind::kQ8_0: return "q8_0";
    case SchemeKind::kQ4_0: return "q4_0";
    case SchemeKind::kQ4_1: return "q4_1";
    case SchemeKind::kQ5_0: return "q5_0";
    case SchemeKind::kQ5_1: return "q5_1";
    case SchemeKind::kIq4Nl: return "iq4_nl";
    default: return "";
  }
}

// vLLM's --kv-cache-dtype for a scheme used for K and V alike, else "".
std::string vllm_dtype(const kv::SchemeSpec& s) {
  if (s.pre_rope || s.had || s.protect != kv::ProtectUnit::kNone) return "";
  if (s.kind == SchemeKind::kFp16 || s.kind == SchemeKind::kBf16) return "auto";
  const bool fixed_one = s.fp8_scale == kv::Fp8Scale::kFixed && s.fp8_scale_value == 1.0f;
  if (s.kind == SchemeKind::kFp8E5M2 && fixed_one) return "fp8_e5m2";
  if (s.kind == SchemeKind::kFp8E4M3 && fixed_one) return "fp8_e4m3";
  if (s.kind == SchemeKind::kFp8E4M3 && s.fp8_scale == kv::Fp8Scale::kCalib) return "fp8_e4m3 --calculate-kv-scales";
  return "";
}

}  // namespace

DeploySettings deploy_settings(const kv::KvPolicy& policy, int n_layers) {
  DeploySettings d;
  bool uniform = true, subsets = false;
  for (int l = 0; l < n_layers; ++l)
    for (kv::Role r : {kv::Role::K, kv::Role::V}) {
      subsets = subsets || policy.subset(l, r);
      uniform = uniform && policy.scheme(l, r) == policy.scheme(0, r);
    }
  if (subsets || !uniform) {
    d.why_not = subsets ? "the plan quantizes a channel subset, which neither server can express"
                        : "the plan gives layers different KV precisions; vLLM and llama.cpp set one cache type "
                          "for all layers";
    return d;
  }
  const kv::SchemeSpec k = policy.scheme(0, kv::Role::K), v = policy.scheme(0, kv::Role::V);
  const std::string vk = vllm_dtype(k);
  if (!vk.empty() && k == v) d.vllm = "--kv-cache-dtype " + vk;
  const std::string ck = llama_cpp_type(k), cv = llama_cpp_type(v);
  if (!ck.empty() && !cv.empty())
    d.llama_cpp = fmt::format("-ctk {} -ctv {}{}", ck, cv, cv == "f16" || cv == "bf16" ? "" : " -fa on");
  if (!d.vllm) d.why_not += fmt::format("vLLM has no KV cache dtype for {}. ", policy.name());
  if (!d.llama_cpp) d.why_not += fmt::format("llama.cpp has no cache type for {}.", policy.name());
  return d;
}

}  // namespace kvaudit::diagnose
