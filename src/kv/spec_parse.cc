// The scheme-spec grammar of SPEC.md §3, parsed by hand so that every error can point at its token.
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>

#include <fmt/format.h>

#include "core/error.h"
#include "kv/spec.h"

namespace kvaudit::kv {

void spec_error(std::string_view full, size_t pos, size_t len, const std::string& what) {
  if (pos > full.size()) pos = full.size();
  if (len == 0) len = 1;
  std::string shown(full);
  for (char& c : shown)  // keep the caret line aligned: control bytes print as '?'
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  throw UsageError(fmt::format("bad KV spec: {}\n  {}\n  {}{}", what, shown, std::string(pos, ' '),
                               std::string(len, '^')));
}

namespace {

constexpr int kMaxBits = 8;
constexpr int kMaxInt = 1 << 20;  // bounds any count in a spec (group size, residual, layer index)

struct Cursor {
  std::string_view full;
  size_t offset;  // of the scheme text inside full
  [[noreturn]] void fail(size_t pos, size_t len, const std::string& what) const {
    spec_error(full, offset + pos, len, what);
  }
};

bool all_digits(std::string_view s) {
  if (s.empty() || s.size() > 7) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int to_int(std::string_view s) { return std::atoi(std::string(s).c_str()); }

// Parses a decimal or scientific float; false on anything else (no hex, inf or nan).
bool parse_float(std::string_view s, double* out) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+')) return false;
  std::string t(s);
  char* end = nullptr;
  *out = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() && std::isfinite(*out);
}

// Scheme head "int4" -> kind and bits; returns false if unknown.
bool parse_head(std::string_view h, SchemeSpec* s) {
  struct Named { std::string_view name; SchemeKind kind; };
  static constexpr Named kFixed[] = {
      {"fp16", SchemeKind::kFp16},      {"bf16", SchemeKind::kBf16},     {"fp8e4m3", SchemeKind::kFp8E4M3},
      {"fp8e5m2", SchemeKind::kFp8E5M2}, {"q8_0", SchemeKind::kQ8_0},     {"q4_0", SchemeKind::kQ4_0},
      {"q4_1", SchemeKind::kQ4_1},      {"q5_0", SchemeKind::kQ5_0},     {"q5_1", SchemeKind::kQ5_1},
      {"iq4_nl", SchemeKind::kIq4Nl}};
  for (const auto& n : kFixed)
    if (h == n.name) {
      s->kind = n.kind;
      s->bits = n.kind == SchemeKind::kFp16 || n.kind == SchemeKind::kBf16 ? 16 : 8;
      if (n.kind == SchemeKind::kQ4_0 || n.kind == SchemeKind::kQ4_1 || n.kind == SchemeKind::kIq4Nl) s->bits = 4;
      if (n.kind == SchemeKind::kQ5_0 || n.kind == SchemeKind::kQ5_1) s->bits = 5;
      return true;
    }
  static constexpr Named kBitsNamed[] = {
      {"int", SchemeKind::kInt}, {"kivi", SchemeKind::kKivi}, {"nuq", SchemeKind::kNuq}};
  for (const auto& n : kBitsNamed)
    if (h.substr(0, n.name.size()) == n.name && all_digits(h.substr(n.name.size()))) {
      s->kind = n.kind;
      s->bits = to_int(h.substr(n.name.size()));
      return true;
    }
  return false;
}

bool has_gran(SchemeKind k) { return k == SchemeKind::kInt; }

void parse_option(std::string_view opt, size_t pos, SchemeSpec* s, const Cursor& cur, bool* seen_gran,
                  bool* seen_sym, bool* seen_g, bool* seen_r, bool* seen_scale, bool* seen_sparse) {
  auto dup = [&](bool* seen) {
    if (*seen) cur.fail(pos, opt.size(), fmt::format("option '{}' given twice", opt));
    *seen = true;
  };
  const bool is_int = s->kind == SchemeKind::kInt;
  const bool is_fp8 = s->kind == SchemeKind::kFp8E4M3 || s->kind == SchemeKind::kFp8E5M2;
  static constexpr std::pair<std::string_view, Gran> kGrans[] = {{"tensor", Gran::kTensor},
      {"token", Gran::kToken}, {"head", Gran::kHead}, {"group", Gran::kGroup}, {"channel", Gran::kChannel}};
  for (const auto& [name, g] : kGrans)
    if (opt == name) {
      if (!has_gran(s->kind)) cur.fail(pos, opt.size(), fmt::format("granularity '{}' applies to int only", opt));
      dup(seen_gran);
      s->gran = g;
      return;
    }
  if (opt == "sym" || opt == "asym") {
    if (!is_int) cur.fail(pos, opt.size(), fmt::format("'{}' applies to int only", opt));
    dup(seen_sym);
    s->sym = opt == "sym";
    return;
  }
  if ((opt[0] == 'g' || opt[0] == 'r') && opt.size() > 1 && opt.substr(0, 5) != "group") {
    const bool g = opt[0] == 'g';
    if (!is_int && s->kind != SchemeKind::kKivi)
      cur.fail(pos, opt.size(), fmt::format("':{}' applies to int and kivi only", opt.substr(0, 1)));
    if (!all_digits(opt.substr(1))) cur.fail(pos + 1, opt.size() - 1, "expected a count after ':" + std::string(opt.substr(0, 1)) + "'");
    const int n = to_int(opt.substr(1));
    if (n > kMaxInt || (g && n < 1)) cur.fail(pos + 1, opt.size() - 1, fmt::format("'{}' out of range", opt.substr(1)));
    dup(g ? seen_g : seen_r);
    (g ? s->group : s->residual) = n;
    return;
  }
  if (opt.substr(0, 6) == "scale=") {
    if (!is_fp8) cur.fail(pos, opt.size(), "':scale=' applies to fp8e4m3/fp8e5m2 only");
    dup(seen_scale);
    std::string_view v = opt.substr(6);
    double f = 0;
    if (v == "calib") {
      s->fp8_scale = Fp8Scale::kCalib;
    } else if (v == "dynamic") {
      s->fp8_scale = Fp8Scale::kDynamic;
    } else if (parse_float(v, &f) && f > 0 && f < 3.0e38) {
      s->fp8_scale = Fp8Scale::kFixed;
      s->fp8_scale_value = float(f);
    } else {
      cur.fail(pos + 6, v.size(), "expected a positive number, 'calib' or 'dynamic' after ':scale='");
    }
    return;
  }
  if (opt.substr(0, 7) == "sparse=") {
    if (s->kind != SchemeKind::kNuq) cur.fail(pos, opt.size(), "':sparse=' applies to nuq only");
    dup(seen_sparse);
    double f = 0;
    if (!parse_float(opt.substr(7), &f) || f < 0 || f >= 0.5)
      cur.fail(pos + 7, opt.size() - 7, "expected a fraction in [0, 0.5) after ':sparse='");
    s->sparse = f;
    return;
  }
  cur.fail(pos, opt.size(), fmt::format("unknown option '{}'", opt));
}

void parse_mod(std::string_view mod, size_t pos, SchemeSpec* s, const Cursor& cur) {
  if (s->is_16bit()) cur.fail(pos, mod.size(), fmt::format("'{}' does not apply to a 16-bit scheme", mod));
  if (mod == "@pre") {
    s->pre_rope = true;
  } else if (mod == "@post") {
    s->pre_rope = false;
  } else if (mod == "+had") {
    s->had = true;
  } else if (mod.substr(0, 9) == "+protect=") {
    std::string_view v = mod.substr(9);
    if (v.size() > 1 && v.back() == '%') {
      double f = 0;
      if (!parse_float(v.substr(0, v.size() - 1), &f) || f <= 0 || f >= 100)
        cur.fail(pos + 9, v.size(), "expected a percentage in (0, 100) after '+protect='");
      s->protect = ProtectUnit::kPercent;
      s->protect_amount = f;
    } else if (v.size() > 2 && v.substr(v.size() - 2) == "ch" && all_digits(v.substr(0, v.size() - 2)) &&
               to_int(v.substr(0, v.size() - 2)) >= 1) {
      s->protect = ProtectUnit::kChannels;
      s->protect_amount = to_int(v.substr(0, v.size() - 2));
    } else {
      cur.fail(pos + 9, v.size(), "expected N% or Nch after '+protect='");
    }
  } else {
    cur.fail(pos, mod.size(), fmt::format("unknown modifier '{}' (known: @pre, @post, +had, +protect=N%|Nch)", mod));
  }
}

}  // namespace

SchemeSpec parse_scheme(std::string_view text, std::string_view full, size_t offset) {
  if (full.empty()) full = text;
  const Cursor cur{full, offset};
  if (text.empty()) cur.fail(0, 1, "missing scheme");
  // Modifiers start at the first '@' or '+'; options are ':'-separated before that.
  const size_t mods_at = std::min(text.find('@'), text.find('+'));
  const std::string_view body = text.substr(0, mods_at);
  const size_t head_end = std::min(body.find(':'), body.size());
  SchemeSpec s;
  if (!parse_head(body.substr(0, head_end), &s))
    cur.fail(0, std::max<size_t>(head_end, 1),
             fmt::format("unknown scheme '{}' (known: fp16, bf16, intB, kiviB, fp8e4m3, fp8e5m2, q8_0, q4_0, q4_1, "
                         "q5_0, q5_1, iq4_nl, nuqB)", body.substr(0, head_end)));
  if ((s.kind == SchemeKind::kInt || s.kind == SchemeKind::kKivi || s.kind == SchemeKind::kNuq) &&
      (s.bits < 1 || s.bits > kMaxBits)) {
    const size_t digits = s.kind == SchemeKind::kKivi ? 4 : 3;
    cur.fail(digits, head_end - digits, fmt::format("bit width {} out of range 1..{}", s.bits, kMaxBits));
  }
  bool seen_gran = false, seen_sym = false, seen_g = false, seen_r = false, seen_scale = false, seen_sparse = false;
  s.group = -1;
  s.residual = -1;
  size_t pos = head_end;
  while (pos < body.size()) {  // body[pos] == ':'
    const size_t next = std::min(body.find(':', pos + 1), body.size());
    const std::string_view opt = body.substr(pos + 1, next - pos - 1);
    if (opt.empty()) cur.fail(pos, 1, "empty option after ':'");
    parse_option(opt, pos + 1, &s, cur, &seen_gran, &seen_sym, &seen_g, &seen_r, &seen_scale, &seen_sparse);
    pos = next;
  }
  // Defaults (SPEC.md §3): N = 32 for group, channel and kivi; R = N for channel and kivi, else 0.
  const bool blocked = s.kind == SchemeKind::kKivi || (s.kind == SchemeKind::kInt && s.gran == Gran::kChannel);
  const bool grouped = blocked || (s.kind == SchemeKind::kInt && s.gran == Gran::kGroup);
  if (seen_g && !grouped) {
    const size_t at = body.find(":g");
    cur.fail(at + 1, 1, "':gN' applies to the group and channel granularities and kivi only");
  }
  if (s.group < 0) s.group = grouped ? 32 : 0;
  if (s.residual < 0) s.residual = blocked ? s.group : 0;
  if (s.kind == SchemeKind::kKivi || (s.kind == SchemeKind::kInt && s.gran == Gran::kChannel)) {
    if (s.residual < s.group || s.residual % s.group != 0) {
      const size_t at = body.find(":r");
      cur.fail(at == std::string_view::npos ? 0 : at + 1, at == std::string_view::npos ? head_end : 1,
               fmt::format("residual R={} must be a positive multiple of the block size N={} (KIVI)", s.residual,
                           s.group));
    }
  }
  if (s.kind != SchemeKind::kInt && s.kind != SchemeKind::kKivi) s.residual = 0;
  if (s.kind == SchemeKind::kInt && s.bits == 1 && s.sym)  // s = max|x| / (2^0 - 1) is undefined
    cur.fail(0, head_end, "int1 has no symmetric form (2^(B-1) - 1 = 0 levels); use asym");
  // Modifiers, each at most once (the key position @pre/@post counts as one: the last would win).
  pos = mods_at;
  std::set<std::string> seen_mods;
  while (pos < text.size()) {
    size_t next = pos + 1;
    while (next < text.size() && text[next] != '@' && text[next] != '+') ++next;
    const std::string_view mod = text.substr(pos, next - pos);
    const std::string kind = mod[0] == '@' ? "@pre/@post" : std::string(mod.substr(0, mod.find('=')));
    if (!seen_mods.insert(kind).second)
      cur.fail(pos, mod.size(), fmt::format("modifier '{}' given twice{}", kind == "@pre/@post" ? std::string(mod) : kind,
                                            kind == "@pre/@post" ? " (@pre and @post exclude each other)" : ""));
    parse_mod(mod, pos, &s, cur);
    pos = next;
  }
  if (s.had && s.protect != ProtectUnit::kNone)
    cur.fail(mods_at, text.size() - mods_at, "'+had' and '+protect' cannot be combined (protect names original channels)");
  return s;
}

std::string to_string(const SchemeSpec& s) {
  std::string out;
  switch (s.kind) {
    case SchemeKind::kFp16: return "fp16";
    case SchemeKind::kBf16: return "bf16";
    case SchemeKind::kInt: {
      static constexpr const char* kGranNames[] = {"tensor", "token", "head", "group", "channel"};
      out = fmt::format("int{}:{}:{}", s.bits, kGranNames[int(s.gran)], s.sym ? "sym" : "asym");
      if (s.gran == Gran::kGroup || s.gran == Gran::kChannel) out += fmt::format(":g{}", s.group);
      if (s.gran == Gran::kChannel || s.residual != 0) out += fmt::format(":r{}", s.residual);
      break;
    }
    case SchemeKind::kKivi: out = fmt::format("kivi{}:g{}:r{}", s.bits, s.group, s.residual); break;
    case SchemeKind::kFp8E4M3:
    case SchemeKind::kFp8E5M2:
      out = s.kind == SchemeKind::kFp8E4M3 ? "fp8e4m3" : "fp8e5m2";
      if (s.fp8_scale == Fp8Scale::kCalib) out += ":scale=calib";
      if (s.fp8_scale == Fp8Scale::kDynamic) out += ":scale=dynamic";
      if (s.fp8_scale == Fp8Scale::kFixed && s.fp8_scale_value != 1.0f) out += fmt::format(":scale={}", s.fp8_scale_value);
      break;
    case SchemeKind::kQ8_0: out = "q8_0"; break;
    case SchemeKind::kQ4_0: out = "q4_0"; break;
    case SchemeKind::kQ4_1: out = "q4_1"; break;
    case SchemeKind::kQ5_0: out = "q5_0"; break;
    case SchemeKind::kQ5_1: out = "q5_1"; break;
    case SchemeKind::kIq4Nl: out = "iq4_nl"; break;
    case SchemeKind::kNuq:
      out = fmt::format("nuq{}", s.bits);
      if (s.sparse > 0) out += fmt::format(":sparse={}", s.sparse);
      break;
  }
  if (s.pre_rope) out += "@pre";
  if (s.had) out += "+had";
  if (s.protect == ProtectUnit::kPercent) out += fmt::format("+protect={}%", s.protect_amount);
  if (s.protect == ProtectUnit::kChannels) out += fmt::format("+protect={}ch", int(s.protect_amount));
  return out;
}

namespace {

// Parses "layers[0-2,5]" starting at full[pos] == 'l'; returns the index just past ']'.
size_t parse_layers(std::string_view full, size_t pos, size_t end, std::vector<std::pair<int, int>>* out) {
  const size_t open = pos + 6;  // "layers"
  if (full.substr(pos, 7) != "layers[") spec_error(full, pos, end - pos, "expected 'k', 'v' or 'layers[...]' as target");
  const size_t close = full.find(']', open);
  if (close == std::string_view::npos || close >= end) spec_error(full, open, end - open, "missing ']' after 'layers['");
  size_t p = open + 1;
  if (p == close) spec_error(full, open, 2, "empty layer list");
  while (p < close) {
    size_t item_end = std::min(full.find(',', p), close);
    std::string_view item = full.substr(p, item_end - p);
    const size_t dash = item.find('-');
    std::string_view a = item.substr(0, dash), b = dash == std::string_view::npos ? a : item.substr(dash + 1);
    if (!all_digits(a) || !all_digits(b))
      spec_error(full, p, std::max<size_t>(item.size(), 1), "expected a layer index or range 'A-B'");
    const int lo = to_int(a), hi = to_int(b);
    if (lo > hi) spec_error(full, p, item.size(), fmt::format("empty layer range {}-{}", lo, hi));
    if (hi >= kMaxInt) spec_error(full, p, item.size(), "layer index out of range");
    out->emplace_back(lo, hi);
    p = item_end + 1;
    if (item_end < close && p == close) spec_error(full, item_end, 1, "trailing ','");
  }
  return close + 1;
}

}  // namespace

std::vector<SpecPart> parse_spec(std::string_view spec) {
  std::vector<SpecPart> parts;
  if (spec.empty()) spec_error(spec, 0, 1, "empty spec");
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t end = std::min(spec.find(';', start), spec.size());
    if (end == start) spec_error(spec, start, 1, "empty part");
    SpecPart part;
    const size_t eq = spec.substr(start, end - start).find('=');
    // '=' inside a scheme (scale=, sparse=, protect=) never precedes the scheme's ':' / '+' tokens;
    // a target has no ':' '@' '+' before its '='.
    size_t scheme_at = start;
    if (eq != std::string_view::npos) {
      std::string_view before = spec.substr(start, eq);
      if (before.find_first_of(":@+") == std::string_view::npos) {
        scheme_at = start + eq + 1;
        const size_t tend = start + eq;
        if (before == "k" || before == "v") {
          part.k = before == "k";
          part.v = before == "v";
        } else {
          size_t p = parse_layers(spec, start, tend, &part.layers);
          std::string_view rest = spec.substr(p, tend - p);
          if (rest == ".k" || rest == ".v") {
            part.k = rest == ".k";
            part.v = rest == ".v";
          } else if (!rest.empty()) {
            spec_error(spec, p, rest.size(), "expected '.k', '.v' or '=' after the layer list");
          }
        }
      }
    }
    part.scheme = parse_scheme(spec.substr(scheme_at, end - scheme_at), spec, scheme_at);
    parts.push_back(std::move(part));
    start = end + 1;
    if (end == spec.size()) break;
    if (start == spec.size()) spec_error(spec, end, 1, "trailing ';'");
  }
  return parts;
}

std::string to_string(const SpecPart& p) {
  std::string t;
  if (!p.layers.empty()) {
    t = "layers[";
    for (size_t i = 0; i < p.layers.size(); ++i) {
      if (i) t += ',';
      const auto [lo, hi] = p.layers[i];
      t += lo == hi ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi);
    }
    t += ']';
    if (p.k != p.v) t += p.k ? ".k" : ".v";
  } else if (p.k != p.v) {
    t = p.k ? "k" : "v";
  }
  return t.empty() ? to_string(p.scheme) : t + "=" + to_string(p.scheme);
}

bool SchemeSpec::needs_calibration() const {
  return (kind == SchemeKind::kFp8E4M3 || kind == SchemeKind::kFp8E5M2 ? fp8_scale == Fp8Scale::kCalib : false) ||
         kind == SchemeKind::kNuq || protect != ProtectUnit::kNone;
}

}  // namespace kvaudit::kv
