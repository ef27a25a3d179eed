// The ablation caches of SPEC.md §5 ("Channel ablation"): only the channels in S are quantized,
// symmetric intB, with a scale computed over S alone; every other channel stays 16-bit. The spec
// grammar cannot say this (its granularities always span all channels), so KvPolicy carries it as
// a programmatic override (kv/policy.h) and a policy file spells it {"scheme", "channels", "scale"}.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kv/cache.h"

namespace kvaudit::kv {

enum class SubsetScale {
  kTensor,   // one scale over every channel of S and every prompt token: max|x| over S / (2^(B-1)-1)
  kChannel,  // one scale per channel of S over the prompt tokens
};

// As SPEC.md §3 `tensor`: the scales are fitted at the first append (the prefill) and kept for later
// tokens, whose values outside the range saturate.
struct ChannelSubset {
  std::vector<int> channels;  // sorted, unique, each in [0, width)
  int bits = 3;               // symmetric intB, 2..8
  SubsetScale scale = SubsetScale::kTensor;
  bool operator==(const ChannelSubset&) const = default;
};

// "tensor" | "channel"; UsageError otherwise.
SubsetScale parse_subset_scale(const std::string& s);
std::string to_string(SubsetScale s);

// Throws UsageError when a channel is outside [0, g.width()), repeated or unsorted, or bits are
// outside 2..8.
std::unique_ptr<LayerCache> make_subset_cache(const ChannelSubset& s, CacheGeometry g);

// The reference quantize-dequantize of `rows` [n, width] in place, with scales `scale` [|S|]
// (kTensor: all equal) fitted by fit_subset_scales over the prefill rows.
std::vector<float> fit_subset_scales(const ChannelSubset& s, const float* rows, int64_t n, int width);
void fake_quantize_subset(const ChannelSubset& s, const std::vector<float>& scales, float* rows, int64_t n,
                          int width);

// Bytes per token of a cache holding `tokens` tokens: |S|·B/8 code bytes (rounded up per token),
// fp32 scales once per sequence, 2 bytes per 16-bit channel.
double subset_cache_bytes(const ChannelSubset& s, CacheGeometry g, int64_t tokens);

}  // namespace kvaudit::kv
