// One KV scheme as the spec grammar states it (SPEC.md §3), before any layer or role is chosen.
// The parser (spec_parse.cc) builds these; registry.cc turns one into a quantizer.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvaudit::kv {

enum class SchemeKind { kFp16, kBf16, kInt, kKivi, kFp8E4M3, kFp8E5M2, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kIq4Nl, kNuq };
enum class Gran { kTensor, kToken, kHead, kGroup, kChannel };
enum class Fp8Scale { kFixed, kCalib, kDynamic };
enum class ProtectUnit { kNone, kPercent, kChannels };

struct SchemeSpec {
  SchemeKind kind = SchemeKind::kFp16;
  int bits = 16;                     // int/kivi/nuq: 1..8
  Gran gran = Gran::kToken;          // int only
  bool sym = false;                  // int only; SPEC default asym
  int group = 0;                     // `:gN`, defaults applied by the parser: 32 for group/channel/kivi, else 0
  int residual = 0;                  // `:rR`, defaults applied: N for channel/kivi, else 0 (tokens kept 16-bit)
  Fp8Scale fp8_scale = Fp8Scale::kFixed;
  float fp8_scale_value = 1.0f;      // kFixed: vLLM default 1.0
  double sparse = 0.0;               // nuq: fraction of values kept exact (dense-and-sparse)
  bool pre_rope = false;             // `@pre`
  bool had = false;                  // `+had`
  ProtectUnit protect = ProtectUnit::kNone;
  double protect_amount = 0;         // percent (0..100) or channel count

  bool is_16bit() const { return kind == SchemeKind::kFp16 || kind == SchemeKind::kBf16; }
  // True when the scheme needs a Calibration (fp8 `calib`, nuq, `+protect`).
  bool needs_calibration() const;
  bool operator==(const SchemeSpec&) const = default;
};

// The canonical spelling, e.g. "int4:token:asym", "kivi2:g32:r32", "fp8e5m2", "int3:tensor:sym@pre+protect=5%".
// parse_scheme(to_string(s)) == s.
std::string to_string(const SchemeSpec& s);

// Parses one scheme (no target). `full` and `offset` locate it inside the whole spec so that errors
// point at the offending token; throws UsageError.
SchemeSpec parse_scheme(std::string_view text, std::string_view full = {}, size_t offset = 0);

// One ";"-separated part of a spec: which layers and roles it names, and their scheme.
struct SpecPart {
  std::vector<std::pair<int, int>> layers;  // inclusive ranges; empty = every layer
  bool k = true;
  bool v = true;
  SchemeSpec scheme;
  bool operator==(const SpecPart&) const = default;
};

// Parses a whole spec (SPEC.md §3 grammar), parts in order (later parts override earlier ones).
std::vector<SpecPart> parse_spec(std::string_view spec);
// The canonical spelling of one part, e.g. "layers[0-2,5].k=int4:token:asym".
std::string to_string(const SpecPart& p);

// UsageError message "bad KV spec: WHAT\n  FULL\n  ^^^" with carets under [pos, pos+len).
[[noreturn]] void spec_error(std::string_view full, size_t pos, size_t len, const std::string& what);

}  // namespace kvaudit::kv
