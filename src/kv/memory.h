// Bytes per token per layer of every scheme, by formula (SPEC.md §3 Memory). Convention:
//   codes: ceil(W'·B/8) bytes per quantized token (W' = channels left after +protect; each token's
//          codes are packed on their own);
//   scales and zero points: intB s and z fp32 (4 bytes each: the SPEC formula exactly), per set
//          (token/head/group), per channel per block of N tokens (channel), once per sequence
//          (tensor); llama.cpp d and m fp16 (2 bytes) per block of 32, as ggml stores them; fp8
//          dynamic scales fp32 (4 bytes); a fixed or calibrated fp8 scale and nuq codebooks are
//          per-layer constants shared by all sequences and not counted;
//   residual: 2 bytes per value of every token still in the 16-bit window; +protect: 2 bytes per
//          protected value; nuq outliers: 4 bytes each (uint16 index + fp16 value) at the nominal
//          fraction, plus a 2-byte count per token;
//   fp16 / bf16: 2 bytes per value.
// cache_bytes is the size of one layer-role cache holding `tokens` tokens appended as one prefill;
// LayerCache::bytes() reports the same number (exactly, except nuq, whose outlier count is the
// data's).
#pragma once
#include <cstdint>

#include "kv/cache.h"
#include "kv/spec.h"

namespace kvaudit::kv {

// Channels kept 16-bit by +protect for a row of `width` channels.
int protected_count(const SchemeSpec& s, int width);
double cache_bytes(const SchemeSpec& s, Role role, CacheGeometry g, int64_t tokens);
inline double bytes_per_token(const SchemeSpec& s, Role role, CacheGeometry g, int64_t context) {
  return context > 0 ? cache_bytes(s, role, g, context) / double(context) : 0.0;
}

}  // namespace kvaudit::kv
