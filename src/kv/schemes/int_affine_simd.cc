// The AVX2 forms of int_affine.cc's definitions (kv/layout.h's formulas): spans, columns, sets
// and the fused fake-quantization, each bit-identical to the scalar definition it vectorises
// (tests/kv/int_affine_test.cc, int_affine_fused_test.cc).
#include "kv/schemes/int_affine.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/half.h"

namespace kvaudit::kv {
namespace {

// ok with the lanes cleared where t is not closer than thr to the integer q = round(t) (so that a
// nearby value could round elsewhere); false on NaN and inf (inf - inf is NaN).
inline __m256 keep_far_from_half(__m256 t, __m256 q, __m256 thr, __m256 ok) {
  const __m256 d = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(t, q));  // exact: within 1/2
  return _mm256_and_ps(ok, _mm256_cmp_ps(d, thr, _CMP_LT_OQ));
}
inline bool all_lanes(__m256 ok) { return _mm256_movemask_ps(ok) == 0xff; }

// minmax_span's definition: lane-wise min/max over x[j], x[j+8], ... (min_ps(v, lo) = v < lo ? v : lo,
// as std::min(lo, v)), lanes combined in order, then the scalar tail.
void minmax_span_lanes(const float* x, int64_t n, float* lo_out, float* hi_out) {
  float lo = 0, hi = 0;
  if (n > 0) lo = hi = x[0];
  int64_t i = 0;
  if (n >= 8) {
    __m256 vlo = _mm256_loadu_ps(x), vhi = vlo;
    for (i = 8; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(x + i);
      vlo = _mm256_min_ps(v, vlo);
      vhi = _mm256_max_ps(v, vhi);
    }
    alignas(32) float l[8], h[8];
    _mm256_store_ps(l, vlo);
    _mm256_store_ps(h, vhi);
    lo = l[0], hi = h[0];
    for (int k = 1; k < 8; ++k) lo = std::min(lo, l[k]), hi = std::max(hi, h[k]);
  }
  for (; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  *lo_out = lo;
  *hi_out = hi;
}

}  // namespace

void minmax_span(const float* x, int64_t n, float* lo_out, float* hi_out) {
  // Four independent accumulators per lane (one dependent min per 8 values is latency-bound), equal
  // to minmax_span_lanes bit for bit: a min/max of non-NaN values does not depend on the order in
  // which they are taken except for the sign of a zero result, and a NaN changes the result only as
  // an accumulator's first value (min_ps(v, lo) keeps lo when v is NaN). So the fast result is kept
  // unless lo or hi is ±0 or one of x[0..32) is NaN; those rows take the definition.
  if (n < 64) return minmax_span_lanes(x, n, lo_out, hi_out);
  // Named accumulators: an array of them is kept in memory by GCC.
  __m256 l0 = _mm256_loadu_ps(x), l1 = _mm256_loadu_ps(x + 8), l2 = _mm256_loadu_ps(x + 16), l3 = _mm256_loadu_ps(x + 24);
  __m256 h0 = l0, h1 = l1, h2 = l2, h3 = l3;
  const __m256 nan = _mm256_or_ps(_mm256_cmp_ps(l0, l1, _CMP_UNORD_Q), _mm256_cmp_ps(l2, l3, _CMP_UNORD_Q));
  int64_t i = 32;
  for (; i + 32 <= n; i += 32) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    const __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
    l0 = _mm256_min_ps(v0, l0), h0 = _mm256_max_ps(v0, h0);
    l1 = _mm256_min_ps(v1, l1), h1 = _mm256_max_ps(v1, h1);
    l2 = _mm256_min_ps(v2, l2), h2 = _mm256_max_ps(v2, h2);
    l3 = _mm256_min_ps(v3, l3), h3 = _mm256_max_ps(v3, h3);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    l0 = _mm256_min_ps(v, l0), h0 = _mm256_max_ps(v, h0);
  }
  l0 = _mm256_min_ps(l3, _mm256_min_ps(l2, _mm256_min_ps(l1, l0)));
  h0 = _mm256_max_ps(h3, _mm256_max_ps(h2, _mm256_max_ps(h1, h0)));
  alignas(32) float lv[8], hv[8];
  _mm256_store_ps(lv, l0);
  _mm256_store_ps(hv, h0);
  float lo = lv[0], hi = hv[0];
  for (int k = 1; k < 8; ++k) lo = std::min(lo, lv[k]), hi = std::max(hi, hv[k]);
  for (; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  if (lo == 0 || hi == 0 || _mm256_movemask_ps(nan) != 0) return minmax_span_lanes(x, n, lo_out, hi_out);
  *lo_out = lo;
  *hi_out = hi;
}

void IntAffine::quantize_columns(const float* x, int64_t n, const float* qscale, const float* zero,
                                 uint8_t* codes) const {
  int64_t i = 0;
  const __m256 vlo = _mm256_set1_ps(float(qmin())), vhi = _mm256_set1_ps(float(qmax()));
  const __m256i voff = _mm256_set1_epi32(code_offset());
  for (; i + 8 <= n; i += 8) {
    const __m256 vs = _mm256_loadu_ps(qscale + i);
    __m256 t = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
    if (!sym) t = _mm256_add_ps(t, _mm256_loadu_ps(zero + i));
    __m256 q = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm256_min_ps(_mm256_max_ps(q, vlo), vhi);
    __m256i c = _mm256_add_epi32(_mm256_cvtps_epi32(q), voff);
    // A zero scale stores code_offset() (see quantize()).
    const __m256i zero_scale = _mm256_castps_si256(_mm256_cmp_ps(vs, _mm256_setzero_ps(), _CMP_EQ_OQ));
    c = _mm256_blendv_epi8(c, voff, zero_scale);
    __m128i c16 = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(c16, c16));
  }
  for (; i < n; ++i) codes[i] = quantize(x[i], {0, sym ? 0.0f : zero[i], qscale[i]});
}

void IntAffine::dequantize_columns(const uint8_t* codes, int64_t n, const float* scale, const float* zero,
                                   float* out) const {
  int64_t i = 0;
  const __m256i voff = _mm256_set1_epi32(code_offset());
  for (; i + 8 <= n; i += 8) {
    const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
    __m256 q = sym ? _mm256_cvtepi32_ps(_mm256_sub_epi32(c, voff))
                   : _mm256_sub_ps(_mm256_cvtepi32_ps(c), _mm256_loadu_ps(zero + i));  // exact: small integers
    _mm256_storeu_ps(out + i, _mm256_mul_ps(q, _mm256_loadu_ps(scale + i)));
  }
  for (; i < n; ++i) out[i] = dequantize(codes[i], {scale[i], sym ? 0.0f : zero[i]});
}

void IntAffine::quantize_span(const float* x, int64_t n, AffineParams p, uint8_t* codes) const {
  int64_t i = 0;
  if (p.qscale == 0) {
    std::fill(codes, codes + n, uint8_t(code_offset()));
    return;
  }
  const __m256 vs = _mm256_set1_ps(p.qscale), vz = _mm256_set1_ps(sym ? 0.0f : p.zero);
  const __m256 vlo = _mm256_set1_ps(float(qmin())), vhi = _mm256_set1_ps(float(qmax()));
  const __m256i voff = _mm256_set1_epi32(code_offset());
  for (; i + 8 <= n; i += 8) {
    __m256 t = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
    if (!sym) t = _mm256_add_ps(t, vz);
    __m256 q = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm256_min_ps(_mm256_max_ps(q, vlo), vhi);  // max(NaN, lo) = lo
    __m256i c = _mm256_add_epi32(_mm256_cvtps_epi32(q), voff);
    __m128i c16 = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    __m128i c8 = _mm_packus_epi16(c16, c16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), c8);
  }
  for (; i < n; ++i) codes[i] = quantize(x[i], p);
}

void IntAffine::dequantize_span(const uint8_t* codes, int64_t n, AffineParams p, float* out) const {
  const int zc = sym ? code_offset() : int(p.zero);
  const __m256i vzc = _mm256_set1_epi32(zc);
  const __m256 vs = _mm256_set1_ps(p.scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(c, vzc)), vs));
  }
  for (; i < n; ++i) out[i] = dequantize(codes[i], p);
}

namespace {

// In-place 8x8 transpose: r[k] lane s becomes r[s] lane k.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// round(x/s [+ z]) (nearest, ties to even), 8 values at a time, bit-identical to rounding the
// division, via a multiply by r = fl(1/s): division is the slowest step of the fused loops.
// Why it is exact: x·r = (x/s)(1+e1)(1+e2), |e| <= 2^-24, so |fl(x·r) - fl(x/s)| <= 2^-22·|x/s|·1.01;
// adding z (0 <= z <= qmax) rounds each sum once more (<= 2^-24 of it), so t = fl(x·r) [+ z] is
// within E = 2^-21·(|t| + qmax) of the exact t. Only lanes with qmin - 1 <= t <= qmax + 1 can end in
// different codes (beyond that both values clamp to the same end: E < 1/2 there unless |t| > 2^19,
// and then both are far past the clamp); for those, |t| + qmax <= 2·qmax + 2, so E <= 2^-21·(2·qmax
// + 2). Two values within E round to different integers only if a half-integer lies between them,
// which |t - round(t)| < 1/2 - 2^-20·(2·qmax + 2) rules out (margin 2E). A run whose check fails in
// any lane (ties, inf, NaN, 1/s overflow; random data: ~qmax·2^-18 of the lanes) is recomputed with
// the division.
constexpr float kRecipMargin = 1.0f / (1 << 20);
struct RecipCheck {
  __m256 thr;  // 1/2 - 2^-20·(2·qmax + 2)
  explicit RecipCheck(int qmax) : thr(_mm256_set1_ps(0.5f - kRecipMargin * float(2 * qmax + 2))) {}
};

// kExact: t = x/s [+ z]; else t = x·r [+ z] and `ok` is cleared in lanes too close to a half-integer.
template <bool kExact>
inline __m256 round_quotient(__m256 x, __m256 s, __m256 r, __m256 z, bool add_z, const RecipCheck& rc, __m256& ok) {
  __m256 t = kExact ? _mm256_div_ps(x, s) : _mm256_mul_ps(x, r);
  if (add_z) t = _mm256_add_ps(t, z);
  const __m256 q = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  if constexpr (!kExact) ok = keep_far_from_half(t, q, rc.thr, ok);
  return q;
}

// The value dequantize() gives for the code quantize() stores, from the rounded q, in float: the
// code is clamp(q) + code_offset() and x' = (code - zc)·s, i.e. (clamp(q) - z)·s; the integer steps are
// exact, and adding nz = -z (asym) or +0 (sym, turning a -0 code into +0 as the integer path does)
// gives the same bits.
inline __m256 dequantized8(__m256 q, __m256 vlo, __m256 vhi, __m256 nz, __m256 vscale) {
  q = _mm256_min_ps(_mm256_max_ps(q, vlo), vhi);  // max(NaN, lo) = lo, as quantize()
  return _mm256_mul_ps(_mm256_add_ps(q, nz), vscale);
}

// Broadcast constants of one intB format for the fused loops.
struct FusedConsts {
  RecipCheck rc;
  __m256 vlo, vhi;
  bool add_z;
  explicit FusedConsts(const IntAffine& a)
      : rc(a.qmax()), vlo(_mm256_set1_ps(float(a.qmin()))), vhi(_mm256_set1_ps(float(a.qmax()))), add_z(!a.sym) {}
};

// fake_quantize_span's vector part: n (a multiple of 8) values with one (qscale != 0, scale, zero).
// Returns false when the reciprocal pass left a lane undecided (the caller then reruns it exactly).
template <bool kExact>
bool fake_quantize_run(const FusedConsts& k, const float* x, int64_t n, AffineParams p, float r, float* out) {
  const __m256 vs = _mm256_set1_ps(p.qscale), vr = _mm256_set1_ps(r), vscale = _mm256_set1_ps(p.scale);
  const __m256 vz = _mm256_set1_ps(k.add_z ? p.zero : 0.0f), nz = _mm256_set1_ps(k.add_z ? -p.zero : 0.0f);
  __m256 ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 q = round_quotient<kExact>(_mm256_loadu_ps(x + i), vs, vr, vz, k.add_z, k.rc, ok);
    _mm256_storeu_ps(out + i, dequantized8(q, k.vlo, k.vhi, nz, vscale));
  }
  return kExact || all_lanes(ok);
}

// x rounded through fp16 (F16C, round to nearest even) when kF16.
template <bool kF16>
inline __m256 load8(const float* x) {
  const __m256 v = _mm256_loadu_ps(x);
  return kF16 ? _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)) : v;
}

// fake_quantize_columns' vector part, n a multiple of 8; same contract as fake_quantize_run.
template <bool kExact, bool kF16>
bool fake_quantize_columns_run(const FusedConsts& k, const float* x, int64_t n, const float* qscale, const float* recip,
                               const float* scale, const float* zero, float* out) {
  const __m256 vzero = _mm256_setzero_ps();
  __m256 ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 vs = kExact ? _mm256_loadu_ps(qscale + i) : vzero;  // unused by the reciprocal pass
    const __m256 vz = k.add_z ? _mm256_loadu_ps(zero + i) : vzero;
    const __m256 vr = kExact ? vs : _mm256_loadu_ps(recip + i);
    __m256 q = round_quotient<kExact>(load8<kF16>(x + i), vs, vr, vz, k.add_z, k.rc, ok);
    // A zero scale stores code_offset(). Only the exact pass needs to say so: with s = 0, 1/s = inf and
    // x·(1/s) is ±inf or NaN, which fails the check, so the reciprocal pass never keeps such a lane.
    if (kExact) q = _mm256_blendv_ps(q, vzero, _mm256_cmp_ps(vs, vzero, _CMP_EQ_OQ));
    // dequantized8 with nz = -z: q + (-z) is q - z by definition; sym adds +0 (-0 -> +0).
    q = _mm256_min_ps(_mm256_max_ps(q, k.vlo), k.vhi);
    q = k.add_z ? _mm256_sub_ps(q, vz) : _mm256_add_ps(q, vzero);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(q, _mm256_loadu_ps(scale + i)));
  }
  return kExact || all_lanes(ok);
}

}  // namespace

void minmax_sets(const float* x, int64_t n_sets, int64_t len, float* lo, float* hi) {
  int64_t s = 0;
  if (len >= 8 && len % 8 == 0) {
    for (; s + 8 <= n_sets; s += 8) {
      __m256 vlo[8], vhi[8];  // [set][lane]
      for (int k = 0; k < 8; ++k) {
        const float* xs = x + (s + k) * len;
        __m256 l = _mm256_loadu_ps(xs), h = l;  // in registers: no store-to-load chain through vlo[]
        for (int64_t i = 8; i < len; i += 8) {  // as minmax_span: min_ps(v, lo)
          const __m256 v = _mm256_loadu_ps(xs + i);
          l = _mm256_min_ps(v, l);
          h = _mm256_max_ps(v, h);
        }
        vlo[k] = l;
        vhi[k] = h;
      }
      transpose8(vlo);  // vlo[k]: lane k of the 8 sets
      transpose8(vhi);
      __m256 rlo = vlo[0], rhi = vhi[0];
      for (int k = 1; k < 8; ++k) {  // std::min(lo, l[k]) = l[k] < lo ? l[k] : lo = min_ps(l[k], lo)
        rlo = _mm256_min_ps(vlo[k], rlo);
        rhi = _mm256_max_ps(vhi[k], rhi);
      }
      _mm256_storeu_ps(lo + s, rlo);
      _mm256_storeu_ps(hi + s, rhi);
    }
  }
  for (; s < n_sets; ++s) minmax_span(x + s * len, len, lo + s, hi + s);
}

void IntAffine::fit_ranges(const float* lo, const float* hi, int64_t n, float* scale, float* zero,
                           float* qscale) const {
  int64_t i = 0;
  const __m256 sign = _mm256_set1_ps(-0.0f), vqmax = _mm256_set1_ps(float(qmax()));
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity()), vmaxs = _mm256_set1_ps(kMaxScale);
  const __m256 floor = _mm256_set1_ps(kAsymScaleFloor), vzero = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    const __m256 l = _mm256_loadu_ps(lo + i), h = _mm256_loadu_ps(hi + i);
    __m256 qs;
    if (sym) {  // std::max(|lo|, |hi|) = |hi| > |lo| ? |hi| : |lo|
      qs = _mm256_div_ps(_mm256_max_ps(_mm256_andnot_ps(sign, h), _mm256_andnot_ps(sign, l)), vqmax);
    } else {  // std::max(t, floor) = floor > t ? floor : t (NaN stays NaN)
      qs = _mm256_max_ps(floor, _mm256_div_ps(_mm256_sub_ps(h, l), vqmax));
    }
    // the stored scale: finite s, else the largest float (NaN included).
    const __m256 finite = _mm256_cmp_ps(_mm256_andnot_ps(sign, qs), inf, _CMP_LT_OQ);
    _mm256_storeu_ps(qscale + i, qs);
    _mm256_storeu_ps(scale + i, _mm256_blendv_ps(vmaxs, qs, finite));
    if (sym) {
      _mm256_storeu_ps(zero + i, vzero);
      continue;
    }
    const __m256 z = _mm256_round_ps(_mm256_div_ps(_mm256_xor_ps(l, sign), qs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // z > qmax ? qmax : (z >= 0 ? z : 0), keeping -0 as the scalar form does.
    __m256 zc = _mm256_blendv_ps(vzero, z, _mm256_cmp_ps(z, vzero, _CMP_GE_OQ));
    zc = _mm256_blendv_ps(zc, vqmax, _mm256_cmp_ps(z, vqmax, _CMP_GT_OQ));
    _mm256_storeu_ps(zero + i, zc);
  }
  for (; i < n; ++i) {
    const AffineParams p = fit_range(lo[i], hi[i]);
    scale[i] = p.scale, zero[i] = p.zero, qscale[i] = p.qscale;
  }
}

void IntAffine::fake_quantize_span(const float* x, int64_t n, AffineParams p, float* out) const {
  fake_quantize_sets(x, 1, n, &p.scale, &p.zero, &p.qscale, out);
}

void IntAffine::fake_quantize_sets(const float* x, int64_t n_sets, int64_t len, const float* scale,
                                   const float* zero, const float* qscale, float* out) const {
  const FusedConsts k(*this);
  const int64_t n8 = len / 8 * 8;
  for (int64_t s = 0; s < n_sets; ++s) {
    const AffineParams p{scale[s], sym ? 0.0f : zero[s], qscale[s]};
    const float* xs = x + s * len;
    float* os = out + s * len;
    if (p.qscale == 0) {  // every code is code_offset()
      std::fill(os, os + len, dequantize(uint8_t(code_offset()), p));
      continue;
    }
    const float r = 1.0f / p.qscale;
    for (int64_t i = 0; i < n8; i += kRecipRun) {  // an undecided lane reruns its run only
      const int64_t m = std::min(kRecipRun, n8 - i);
      if (!fake_quantize_run<false>(k, xs + i, m, p, r, os + i)) fake_quantize_run<true>(k, xs + i, m, p, r, os + i);
    }
    for (int64_t i = n8; i < len; ++i) os[i] = dequantize(quantize(xs[i], p), p);
  }
}

void IntAffine::fake_quantize_columns(const float* x, int64_t n, const float* qscale, const float* recip,
                                      const float* scale, const float* zero, float* out, bool fp16_input) const {
  const FusedConsts k(*this);
  const int64_t n8 = n / 8 * 8;
  for (int64_t i = 0; i < n8; i += kRecipRun) {  // an undecided lane reruns its run only
    const int64_t m = std::min(kRecipRun, n8 - i);
    if (fp16_input) {
      if (!fake_quantize_columns_run<false, true>(k, x + i, m, qscale + i, recip + i, scale + i, zero + i, out + i))
        fake_quantize_columns_run<true, true>(k, x + i, m, qscale + i, recip + i, scale + i, zero + i, out + i);
    } else if (!fake_quantize_columns_run<false, false>(k, x + i, m, qscale + i, recip + i, scale + i, zero + i, out + i)) {
      fake_quantize_columns_run<true, false>(k, x + i, m, qscale + i, recip + i, scale + i, zero + i, out + i);
    }
  }
  for (int64_t i = n8; i < n; ++i) {
    const float z = sym ? 0.0f : zero[i];
    const float xi = fp16_input ? round_fp16(x[i]) : x[i];
    out[i] = dequantize(quantize(xi, {0, z, qscale[i]}), {scale[i], z});
  }
}

}  // namespace kvaudit::kv
