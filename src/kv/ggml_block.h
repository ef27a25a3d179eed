// llama.cpp's KV block quantizers (SPEC.md §3), ggml's quantize_row_*_ref formulas for one block of
// up to 32 values, written once for the CPU cache (kv/schemes/llama_cpp.cc) and the CUDA engine's
// quantize-on-write. Every multiply and add is its own rounding (mul_rn/add_rn): nvcc would otherwise
// fuse x·(1/d) + 8.5 into one fma and change a code.
//   q8_0: d = amax/127, q = roundf(x·(1/d))  (round half away from zero);
//   q4_0: d = m/-8 (m = the signed value of largest |x|, first wins), q = min(15, (int8)(x·(1/d) + 8.5));
//   q5_0: d = m/-16, q = min(31, (int8)(x·(1/d) + 16.5));
//   q4_1: d = (max-min)/15, q = min(15, (int8)((x-min)·(1/d) + 0.5)), m = min;
//   q5_1: d = (max-min)/31, q = (uint8)((x-min)·(1/d) + 0.5);
//   iq4_nl: d0 = m/-127, q = nearest table entry to x/d0 (ties up), then d = Σw·v·x / Σw·v² with
//           w = x² (the single-pass search llama.cpp's CUDA KV copy uses).
// d and m are stored fp16 (here: fp32 values that are fp16-exact).
#pragma once
#include <cstdint>

#include "core/half.h"
#include "io/ggml_quants.h"

namespace kvaudit::kv {

inline constexpr int kGgmlBlock = 32;

KVAUDIT_HD inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;  // the host build never contracts (-ffp-contract=off)
#endif
}
KVAUDIT_HD inline float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
KVAUDIT_HD inline float fabs_bits(float x) { return bits_float(float_bits(x) & 0x7fffffffu); }

// float -> int32 as x86's cvttss2si does it: INT32_MIN for NaN, infinities and values out of range,
// where C++'s conversion is undefined. ggml's reference converts an infinite input (amax infinite,
// scale 0, inf * 0 = NaN; or -inf times a finite scale) that way on x86; here it is defined everywhere.
KVAUDIT_HD inline int32_t x86_float_to_int32(float v) {
  return v >= -2147483648.0f && v < 2147483648.0f ? int32_t(v) : int32_t(-2147483647 - 1);
}
// roundf: half away from zero (exact: trunc(|x| + 0.5) can round up in the add, so compare instead).
KVAUDIT_HD inline float round_half_away(float x) {
  const float a = fabs_bits(x);
  if (!(a < 8388608.0f)) return x;  // integral already, or NaN/inf
  float t = float(int32_t(a));
  if (add_rn(a, -t) >= 0.5f) t = add_rn(t, 1.0f);
  return bits_float(float_bits(t) | (float_bits(x) & 0x80000000u));
}

KVAUDIT_HD inline bool ggml_has_min(io::GgmlType t) { return t == io::GgmlType::Q4_1 || t == io::GgmlType::Q5_1; }
KVAUDIT_HD inline int ggml_code_bits(io::GgmlType t) {
  return t == io::GgmlType::Q8_0 ? 8 : t == io::GgmlType::Q5_0 || t == io::GgmlType::Q5_1 ? 5 : 4;
}
// ggml's iq4_nl non-uniform table (kvalues_iq4nl).
KVAUDIT_HD inline int iq4_nl_value(int i) {
  constexpr int8_t kValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  return kValues[i & 15];
}
// Nearest iq4_nl table entry; exact midpoints go to the upper entry (ggml best_index_int8).
KVAUDIT_HD inline uint8_t iq4_nl_nearest(float v) {
  if (v <= float(iq4_nl_value(0))) return 0;
  if (v >= float(iq4_nl_value(15))) return 15;
  int hi = 1;
  while (v >= float(iq4_nl_value(hi))) ++hi;  // value[hi-1] <= v < value[hi]
  return add_rn(v, -float(iq4_nl_value(hi - 1))) < add_rn(float(iq4_nl_value(hi)), -v) ? uint8_t(hi - 1) : uint8_t(hi);
}

struct GgmlParams {
  float d = 0;  // fp16-exact
  float m = 0;  // fp16-exact (q4_1, q5_1)
};

// The reference quantization of x[0..n), n <= 32 (one block), into codes[0..n): q8_0 codes are int8
// two's complement, the others unsigned.
KVAUDIT_HD inline GgmlParams ggml_quantize_ref(io::GgmlType t, const float* x, int n, uint8_t* codes) {
  GgmlParams p;
  switch (t) {
    case io::GgmlType::Q8_0: {
      float amax = 0;
      for (int j = 0; j < n; ++j) {
        const float a = fabs_bits(x[j]);
        amax = amax < a ? a : amax;  // std::max(amax, |x|): NaN keeps amax
      }
      const float d = amax / 127.0f;
      const float id = d != 0 ? 1.0f / d : 0.0f;
      p.d = round_fp16(d);
      for (int j = 0; j < n; ++j) codes[j] = uint8_t(int8_t(x86_float_to_int32(round_half_away(mul_rn(x[j], id)))));
      break;
    }
    case io::GgmlType::Q4_0:
    case io::GgmlType::Q5_0:
    case io::GgmlType::IQ4_NL: {
      float amax = 0, m = 0;  // the signed value of largest |x|; the first one wins a tie
      for (int j = 0; j < n; ++j)
        if (amax < fabs_bits(x[j])) amax = fabs_bits(x[j]), m = x[j];
      if (t == io::GgmlType::IQ4_NL) {
        const float d0 = m / float(iq4_nl_value(0));
        const float id = d0 != 0 ? 1.0f / d0 : 0.0f;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < n; ++j) {
          codes[j] = iq4_nl_nearest(mul_rn(x[j], id));
          const float v = float(iq4_nl_value(codes[j])), w = mul_rn(x[j], x[j]);
          sumqx = add_rn(sumqx, mul_rn(mul_rn(w, v), x[j]));
          sumq2 = add_rn(sumq2, mul_rn(mul_rn(w, v), v));
        }
        p.d = round_fp16(sumq2 > 0 ? sumqx / sumq2 : d0);
        break;
      }
      const bool five = t == io::GgmlType::Q5_0;
      const float d = m / (five ? -16.0f : -8.0f);
      const float id = d != 0 ? 1.0f / d : 0.0f;
      p.d = round_fp16(d);
      for (int j = 0; j < n; ++j) {
        const int q = int8_t(x86_float_to_int32(add_rn(mul_rn(x[j], id), five ? 16.5f : 8.5f)));  // toward zero
        codes[j] = uint8_t(q < (five ? 31 : 15) ? q : (five ? 31 : 15));
      }
      break;
    }
    case io::GgmlType::Q4_1:
    case io::GgmlType::Q5_1: {
      const bool five = t == io::GgmlType::Q5_1;
      float lo = 3.40282347e+38f, hi = -3.40282347e+38f;
      for (int j = 0; j < n; ++j) {
        lo = x[j] < lo ? x[j] : lo;  // std::min / std::max
        hi = hi < x[j] ? x[j] : hi;
      }
      const float d = (hi - lo) / (five ? 31.0f : 15.0f);
      const float id = d != 0 ? 1.0f / d : 0.0f;
      p.d = round_fp16(d);
      p.m = round_fp16(lo);
      for (int j = 0; j < n; ++j) {
        // q4_1: min(15, (int8)(x0 + 0.5)); q5_1: (uint8)(x0 + 0.5), which never exceeds 31.
        const int32_t r = x86_float_to_int32(add_rn(mul_rn(add_rn(x[j], -lo), id), 0.5f));
        const int q = five ? int(uint8_t(r)) : int(int8_t(r));
        codes[j] = uint8_t(q < (five ? 31 : 15) ? q : (five ? 31 : 15));
      }
      break;
    }
    default: break;
  }
  return p;
}

// x' from a code: q8_0 q·d; q4_0 (q-8)·d; q5_0 (q-16)·d; q4_1/q5_1 q·d + m; iq4_nl table[q]·d.
KVAUDIT_HD inline float ggml_dequantize(io::GgmlType t, uint8_t code, float d, float m) {
  switch (t) {
    case io::GgmlType::Q8_0: return float(int8_t(code)) * d;
    case io::GgmlType::Q4_0: return float(int(code) - 8) * d;
    case io::GgmlType::Q5_0: return float(int(code) - 16) * d;
    case io::GgmlType::Q4_1:
    case io::GgmlType::Q5_1: return add_rn(mul_rn(float(code), d), m);
    case io::GgmlType::IQ4_NL: return float(iq4_nl_value(code)) * d;
    default: return 0;
  }
}

}  // namespace kvaudit::kv
