// Test helpers for kv/layout.h (tests/kv/layout_test.cc on the CPU, tests/cuda/kv_cuda_test.cc on the
// device): rows that exercise the degenerate sets, and the CPU quantizers' codes and parameters of a
// row in a layout's terms.
#pragma once
#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include <string>

#include "core/half.h"
#include "kv/ggml_block.h"
#include "kv/layout.h"
#include "kv/schemes/fp8.h"
#include "kv/schemes/int_affine.h"
#include "kv/schemes/int_rows.h"

namespace kvaudit::kv::testing {

constexpr int kHeads = 4, kHeadDim = 16, kWidth = kHeads * kHeadDim;

// Rows with a spread of magnitudes per channel, an outlier channel, an all-zero row and a constant
// row (the degenerate sets: s = 0 for sym, the 1e-8 floor for asym).
inline std::vector<float> test_rows(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(size_t(n * kWidth));
  for (float& v : x) v = u(rng);
  for (int64_t t = 0; t < n; ++t) {
    for (int c = 0; c < kWidth; ++c) x[size_t(t * kWidth + c)] *= 0.05f + 0.1f * float(c % 7);
    x[size_t(t * kWidth + 5)] *= 40.0f;
  }
  if (n > 3) {
    std::fill(x.begin() + 2 * kWidth, x.begin() + 3 * kWidth, 0.0f);
    std::fill(x.begin() + 3 * kWidth, x.begin() + 4 * kWidth, 0.75f);
  }
  return x;
}

// The CPU's codes and parameters of one row of kWidth values (RowQuantizer::quantize; `tensor`: the
// sequence's fitted parameters).
struct CpuRow {
  std::vector<uint32_t> codes;
  std::vector<float> params;
};

inline CpuRow cpu_row(const KvLayout& L, const float* x, const AffineParams& tensor) {
  CpuRow r;
  r.codes.resize(kWidth);
  std::vector<uint8_t> c8(kWidth);
  switch (L.kind) {
    case LayoutKind::kPlain:
      for (int c = 0; c < kWidth; ++c) r.codes[size_t(c)] = float_bits(x[c]);
      return r;
    case LayoutKind::kBf16:
      for (int c = 0; c < kWidth; ++c) r.codes[size_t(c)] = float_to_bf16(x[c]);
      return r;
    case LayoutKind::kInt: {
      const IntAffine a{L.bits, L.sym};
      if (L.tensor) {
        a.quantize_span(x, kWidth, tensor, c8.data());
      } else {
        auto q = make_int_row_quantizer(a, std::vector<int>(size_t(kWidth / L.set_len), L.set_len));
        r.params.resize(size_t(q->n_params()));
        q->quantize(x, c8.data(), r.params.data(), nullptr);
      }
      break;
    }
    case LayoutKind::kFp8: {
      auto q = make_fp8_quantizer(fp8_format(L.e5m2), kWidth, L.fp8_scale);
      r.params.resize(size_t(q->n_params()));
      q->quantize(x, c8.data(), r.params.data(), nullptr);
      break;
    }
    case LayoutKind::kGgml: {  // the reference blocks over the row in stored (position) order
      const int nb = L.n_sets();
      r.params.resize(size_t(L.row_params()));
      std::vector<float> xp(kWidth);
      for (int p = 0; p < kWidth; ++p) xp[size_t(p)] = x[L.channel_at(p)];
      for (int b = 0; b < nb; ++b) {
        const GgmlParams gp = ggml_quantize_ref(L.ggml, xp.data() + b * kGgmlBlock, kGgmlBlock, c8.data() + b * kGgmlBlock);
        r.params[size_t(b)] = gp.d;
        if (ggml_has_min(L.ggml)) r.params[size_t(nb + b)] = gp.m;
      }
      break;
    }
  }
  for (int c = 0; c < kWidth; ++c) r.codes[size_t(c)] = c8[size_t(c)];
  return r;
}

// codes [width] packed as kv/layout.h stores a row: L.bits each, LSB-first in 32-bit words.
inline std::vector<uint32_t> pack_row(const KvLayout& L, const std::vector<uint32_t>& codes) {
  std::vector<uint32_t> words(size_t(L.row_words()), 0);
  for (size_t i = 0; i < codes.size(); ++i) {
    const uint64_t at = uint64_t(i) * uint64_t(L.bits), v = codes[i];
    words[at / 32] |= uint32_t(v << (at % 32));
    if (at % 32 + uint64_t(L.bits) > 32) words[at / 32 + 1] |= uint32_t(v >> (32 - at % 32));
  }
  return words;
}

// The schemes a device stores row by row as they arrive (kv::scheme_layout), as the tests name them.
inline const std::vector<const char*>& layout_schemes() {
  static const std::vector<const char*> s = {
      "fp16",       "bf16",          "int8:token:asym", "int4:token:asym", "int4:token:sym",
      "int3:head:asym", "int2:head:sym", "int1:token:asym", "int5:group:g8", "int6:group:g16:sym",
      "int7:token", "int3:tensor:sym", "int4:tensor:asym", "fp8e4m3",      "fp8e5m2",
      "fp8e4m3:scale=dynamic", "fp8e5m2:scale=dynamic", "fp8e4m3:scale=0.01", "q8_0", "q4_0",
      "q4_1",       "q5_0",          "q5_1",            "iq4_nl"};
  return s;
}

// The schemes a device stores with a residual window (fp16 rows quantized once they leave it):
// KIVI, `channel` blocks, token-wise `:rR`.
inline const std::vector<const char*>& window_schemes() {
  static const std::vector<const char*> s = {"kivi2:g4:r8", "kivi4:g8:r16",        "int2:channel:g4:r8",
                                             "int4:channel:sym:g4:r4", "int3:token:r5", "int4:group:g16:r3:sym",
                                             "int8:head:asym:r1"};
  return s;
}

// A scheme as a test name ("int4:token:asym" -> "int4_token_asym").
inline std::string test_name(std::string n) {
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

}  // namespace kvaudit::kv::testing
