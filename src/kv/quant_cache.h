// The LayerCache behind every quantized scheme (SPEC.md §3 streaming semantics):
//  - rows arrive in stream order; `+had` rotates each head first; `+protect` channels are split off
//    and kept in fp16; the remaining (compact) channels go to the scheme;
//  - a residual window keeps the newest rows in 16-bit: token-wise schemes with `:rR` quantize a row
//    once R newer rows exist (KIVI values); `channel` quantizes whole blocks of N rows once R >= N
//    rows are pending (KIVI keys: R a multiple of N); with a residual window every incoming value is
//    first rounded to fp16 (the residual's storage), so a row's result does not depend on when it
//    was quantized;
//  - `tensor` fits (s, z) on the first append (the prefill) and keeps it; `--compat paper` fits
//    `tensor` and `channel` on each append alone, without a residual window.
// Storage::kSimulated writes dequantized floats; kPacked keeps only bit-packed codes, parameters
// (docs/KV_SCHEMES.md), sparse outliers and the fp16 residual/protected channels, and decodes rows()
// from those bytes on each call after an append, into a buffer lent by a per-thread arena that
// serves one layer at a time: a packed rows() pointer is valid until the next append to that cache
// or the next rows() of a packed cache of another layer on the same thread (the engine reads each
// layer's rows before it moves to the next layer). Both storages give identical rows().
#pragma once
#include <memory>
#include <vector>

#include "kv/cache.h"
#include "kv/policy.h"
#include "kv/row_quantizer.h"
#include "kv/schemes/int_affine.h"

namespace kvaudit::kv {

struct QuantPlan {
  enum class Mode { kRows, kTensor, kChannel };
  CacheGeometry geometry;
  Mode mode = Mode::kRows;
  std::shared_ptr<const RowQuantizer> rows;  // kRows
  IntAffine affine{8, false};                // kTensor, kChannel
  int block = 0;                             // kChannel: N
  int residual = 0;                          // R
  bool compat_paper = false;
  bool had = false;
  std::vector<int> protected_channels;       // ascending original channel indices
  bool sparse_header = false;                // nuq with outliers: a 2-byte count per row
  Storage storage = Storage::kSimulated;
  int layer = 0;                             // packed: decode buffers are lent per layer (quant_cache.cc)
};

std::unique_ptr<LayerCache> make_quant_cache(QuantPlan plan);
// bf16: every value rounded to bfloat16 (2 bytes each, both storages).
std::unique_ptr<LayerCache> make_bf16_cache(CacheGeometry g);

}  // namespace kvaudit::kv
