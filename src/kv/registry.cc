#include "kv/registry.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "kv/policy.h"
#include "kv/quant_cache.h"
#include "kv/schemes/fp8.h"
#include "kv/schemes/hadamard.h"
#include "kv/schemes/int_rows.h"
#include "kv/schemes/llama_cpp.h"
#include "kv/schemes/nuq.h"

namespace kvaudit::kv {

SchemeSpec effective_scheme(const SchemeSpec& s, Role role) {
  if (s.kind != SchemeKind::kKivi) return s;
  SchemeSpec e = s;
  e.kind = SchemeKind::kInt;
  e.sym = false;
  e.gran = role == Role::K ? Gran::kChannel : Gran::kGroup;
  return e;
}

namespace {

const char* role_name(Role r) { return r == Role::K ? "k" : "v"; }

const ChannelStats& need_stats(const SchemeSpec& s, Role role, CacheGeometry g, const CacheOptions& o,
                               const char* what) {
  if (!o.stats)
    usage_error("KV scheme '{}' needs calibration ({}) for layer {} {}, and none was given", to_string(s), what,
                o.layer, role_name(role));
  if (o.stats->width != g.width())
    usage_error("calibration of layer {} {} has width {}, the cache has {}", o.layer, role_name(role), o.stats->width,
                g.width());
  return *o.stats;
}

// `+protect`: the top channels by calibration max|x| (ties: lower index), ascending.
std::vector<int> protected_channels(const SchemeSpec& s, Role role, CacheGeometry g, const CacheOptions& o) {
  if (s.protect == ProtectUnit::kNone) return {};
  const ChannelStats& st = need_stats(s, role, g, o, "+protect ranks channels by max|x|");
  const int w = g.width();
  // N% of the channels, rounded up so that any positive percentage protects at least one.
  const int count = s.protect == ProtectUnit::kPercent ? int(std::ceil(s.protect_amount / 100.0 * w - 1e-9))
                                                       : int(s.protect_amount);
  if (count >= w) usage_error("'{}' protects {} of {} channels: nothing left to quantize", to_string(s), count, w);
  std::vector<int> idx(w);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return st.max_abs[a] > st.max_abs[b]; });
  idx.resize(count);
  std::sort(idx.begin(), idx.end());
  return idx;
}

// Lengths of the runs of unprotected channels in each consecutive span of `span` original channels.
std::vector<int> set_lengths(int width, int span, const std::vector<int>& prot) {
  std::vector<int> sets;
  for (int c0 = 0; c0 < width; c0 += span) {
    int n = 0;
    for (int c = c0; c < c0 + span; ++c) n += !std::binary_search(prot.begin(), prot.end(), c);
    if (n > 0) sets.push_back(n);
  }
  return sets;
}

// llama.cpp's key order (llama_cpp_key_order) over the compact row of kept channels: the kept
// channels in llama.cpp's order, as compact indices. Empty when that is the identity.
std::vector<int> ggml_key_order(CacheGeometry g, const std::vector<int>& kept) {
  if (!g.llama_cpp_pairs_adjacent) return {};
  std::vector<int> compact(size_t(g.width()), -1);
  for (size_t i = 0; i < kept.size(); ++i) compact[size_t(kept[i])] = int(i);
  std::vector<int> order;
  for (int c : llama_cpp_key_order(g))
    if (compact[size_t(c)] >= 0) order.push_back(compact[size_t(c)]);
  return order;
}

// The fp8 scale of a site: the fixed one, 0 for dynamic, or (calib) the per-layer max|x| over the
// calibration prompts of the kept channels / the format's max finite value.
float fp8_scale(const SchemeSpec& s, Role role, CacheGeometry g, const CacheOptions& o, const std::vector<int>& kept) {
  if (s.fp8_scale == Fp8Scale::kDynamic) return 0;
  if (s.fp8_scale != Fp8Scale::kCalib) return s.fp8_scale_value;
  const Fp8Format& f = s.kind == SchemeKind::kFp8E4M3 ? kE4M3 : kE5M2;
  const ChannelStats& st = need_stats(s, role, g, o, "scale=calib is max|x| / fp8 max");
  float amax = 0;
  for (int c : kept) amax = std::max(amax, st.max_abs[c]);
  return amax > 0 ? amax / f.max_value : 1.0f;
}

// The checks every scheme's storage makes of the geometry (s: the effective scheme of `spec`).
void check_geometry(const SchemeSpec& spec, const SchemeSpec& s, CacheGeometry g) {
  if (g.n_kv_heads <= 0 || g.head_dim <= 0) usage_error("KV cache geometry {}x{} is empty", g.n_kv_heads, g.head_dim);
  if (s.kind == SchemeKind::kInt && s.gran == Gran::kGroup && g.width() % s.group != 0)
    usage_error("'{}': group size {} does not divide the {} channels of a token ({} heads x {})", to_string(spec),
                s.group, g.width(), g.n_kv_heads, g.head_dim);
}

bool is_llama_cpp(SchemeKind k) {
  return k == SchemeKind::kQ8_0 || k == SchemeKind::kQ4_0 || k == SchemeKind::kQ4_1 || k == SchemeKind::kQ5_0 ||
         k == SchemeKind::kQ5_1 || k == SchemeKind::kIq4Nl;
}

void check_ggml_width(const SchemeSpec& spec, int width) {
  if (width % kGgmlBlock != 0)
    usage_error("'{}': llama.cpp blocks of {} do not divide the {} channels of a token", to_string(spec), kGgmlBlock,
                width);
}

}  // namespace

std::optional<KvLayout> scheme_layout(const SchemeSpec& spec, Role role, CacheGeometry g, const CacheOptions& o) {
  const SchemeSpec s = effective_scheme(spec, role);
  check_geometry(spec, s, g);
  KvLayout L;
  L.width = g.width();
  if (spec.kind == SchemeKind::kFp16) return L;
  if (spec.kind == SchemeKind::kBf16) {
    L.kind = LayoutKind::kBf16;
    L.bits = 16;
    return L;
  }
  if (s.had || s.protect != ProtectUnit::kNone || (role == Role::K && s.pre_rope)) return std::nullopt;
  if (s.kind == SchemeKind::kInt) {
    // --compat paper fits tensor and channel on each append alone; tensor with a window: host only.
    if ((s.gran == Gran::kChannel || s.gran == Gran::kTensor) && o.compat_paper) return std::nullopt;
    if (s.gran == Gran::kTensor && s.residual > 0) return std::nullopt;
    L.kind = LayoutKind::kInt;
    L.bits = s.bits;
    L.sym = s.sym;
    L.tensor = s.gran == Gran::kTensor;
    L.residual = s.residual;
    L.block_rows = s.gran == Gran::kChannel ? s.group : 0;
    L.set_len = s.gran == Gran::kHead ? g.head_dim : s.gran == Gran::kGroup ? s.group : L.width;
    return L;
  }
  if (s.residual > 0) return std::nullopt;
  if (s.kind == SchemeKind::kFp8E4M3 || s.kind == SchemeKind::kFp8E5M2) {
    std::vector<int> all(size_t(L.width));
    std::iota(all.begin(), all.end(), 0);
    L.kind = LayoutKind::kFp8;
    L.bits = 8;
    L.e5m2 = s.kind == SchemeKind::kFp8E5M2;
    L.fp8_scale = fp8_scale(s, role, g, o, all);
    return L;
  }
  if (is_llama_cpp(s.kind)) {
    check_ggml_width(spec, L.width);
    L.kind = LayoutKind::kGgml;
    L.ggml = ggml_type(s.kind);
    L.bits = ggml_code_bits(L.ggml);
    L.set_len = kGgmlBlock;
    if (role == Role::K && g.llama_cpp_pairs_adjacent) {
      llama_cpp_key_order(g);  // the same checks (an even head_dim)
      L.pair_dim = g.head_dim;
    }
    return L;
  }
  return std::nullopt;
}

std::unique_ptr<LayerCache> make_scheme_cache(const SchemeSpec& spec, Role role, CacheGeometry g, const CacheOptions& o) {
  const SchemeSpec s = effective_scheme(spec, role);
  check_geometry(spec, s, g);
  if (spec.kind == SchemeKind::kFp16) return make_plain_cache(g);
  if (spec.kind == SchemeKind::kBf16) return make_bf16_cache(g);
  const int w = g.width();
  QuantPlan plan;
  plan.geometry = g;
  plan.storage = o.storage;
  plan.layer = o.layer;
  plan.compat_paper = o.compat_paper;
  plan.had = s.had;
  if (s.had && !is_power_of_two(g.head_dim))
    usage_error("'{}': +had needs a power-of-two head_dim, the model has {}", to_string(spec), g.head_dim);
  plan.protected_channels = protected_channels(s, role, g, o);
  const std::vector<int>& prot = plan.protected_channels;
  const int wc = w - int(prot.size());
  std::vector<int> kept;
  for (int c = 0; c < w; ++c)
    if (!std::binary_search(prot.begin(), prot.end(), c)) kept.push_back(c);
  switch (s.kind) {
    case SchemeKind::kInt: {
      const IntAffine a{s.bits, s.sym};
      plan.residual = s.residual;
      switch (s.gran) {
        case Gran::kTensor: plan.mode = QuantPlan::Mode::kTensor; plan.affine = a; break;
        case Gran::kChannel:
          plan.mode = QuantPlan::Mode::kChannel;
          plan.affine = a;
          plan.block = s.group;
          break;
        case Gran::kToken: plan.rows = make_int_row_quantizer(a, {wc}); break;
        case Gran::kHead: plan.rows = make_int_row_quantizer(a, set_lengths(w, g.head_dim, prot)); break;
        case Gran::kGroup: plan.rows = make_int_row_quantizer(a, set_lengths(w, s.group, prot)); break;
      }
      break;
    }
    case SchemeKind::kFp8E4M3:
    case SchemeKind::kFp8E5M2: {
      const Fp8Format& f = s.kind == SchemeKind::kFp8E4M3 ? kE4M3 : kE5M2;
      plan.rows = make_fp8_quantizer(f, wc, fp8_scale(s, role, g, o, kept));
      break;
    }
    case SchemeKind::kQ8_0:
    case SchemeKind::kQ4_0:
    case SchemeKind::kQ4_1:
    case SchemeKind::kQ5_0:
    case SchemeKind::kQ5_1:
    case SchemeKind::kIq4Nl:
      if (prot.empty()) check_ggml_width(spec, w);
      plan.rows = make_ggml_quantizer(s.kind, wc, role == Role::K ? ggml_key_order(g, kept) : std::vector<int>{});
      break;
    case SchemeKind::kNuq: {
      const ChannelStats& st = need_stats(s, role, g, o, "nuq learns per-channel codebooks");
      plan.rows = make_nuq_quantizer(fit_nuq(st, kept, s.bits, s.sparse));
      plan.sparse_header = s.sparse > 0;
      break;
    }
    default: runtime_error("KV scheme '{}' has no quantizer", to_string(s));
  }
  return make_quant_cache(std::move(plan));
}

}  // namespace kvaudit::kv
