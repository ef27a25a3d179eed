#include "kv/quant_cache.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "kv/bit_pack.h"
#include "kv/schemes/hadamard.h"
#include "kv/schemes/int_rows.h"
#include "kv/span_simd.h"

namespace kvaudit::kv {
namespace {

constexpr size_t kFp16Bytes = 2;
constexpr size_t kIntParamBytes = 4;  // intB scales and zero points are fp32 (schemes/int_affine.h)
constexpr size_t kOutlierBytes = 4;  // uint16 channel index + fp16 value
// Rows per step of a long prefill through the residual: small enough that the pending rows stay in
// L2 (64 x 4 KiB rows for an 8B-geometry layer).
constexpr int64_t kChunkRows = 64;

// A growable float buffer that leaves new storage uninitialised: every row of the mirror is written
// by append() before rows() can read it, and zero-filling 2x the cache per prefill showed in the
// benchmark.
class RowBuffer {
 public:
  size_t size() const { return n_; }
  float* data() { return p_.get(); }
  const float* data() const { return p_.get(); }
  float& operator[](size_t i) { return p_[i]; }
  void reserve(size_t n) {
    if (n > cap_) grow(n);
  }
  void resize(size_t n) {
    if (n > cap_) grow(std::max(n, 2 * cap_));
    n_ = n;
  }
  size_t capacity() const { return cap_; }
  // Drops spare capacity beyond n values (keeping the data).
  void shrink_to(size_t n) {
    if (cap_ > std::max(n, n_)) {
      const size_t keep = n_;
      std::unique_ptr<float[]> q(new float[std::max(n, n_)]);
      if (keep) std::memcpy(q.get(), p_.get(), keep * sizeof(float));
      p_ = std::move(q);
      cap_ = std::max(n, n_);
    }
  }
  void release() {
    p_.reset();
    n_ = cap_ = 0;
  }
  // Drops the first n values (a queue of pending rows).
  void erase_front(size_t n) {
    if (n < n_) std::memmove(data(), data() + n, (n_ - n) * sizeof(float));
    n_ -= std::min(n, n_);
  }

 private:
  void grow(size_t cap) {
    std::unique_ptr<float[]> q(new float[cap]);
    if (n_) std::memcpy(q.get(), data(), n_ * sizeof(float));
    p_ = std::move(q);
    cap_ = cap;
  }
  std::unique_ptr<float[]> p_;
  size_t n_ = 0, cap_ = 0;
};

// Grows v to n elements with at most 1/8 spare capacity (a packed cache's resident size stays close
// to its bytes(), SPEC.md §3 Memory), instead of std::vector's doubling.
template <class T>
void grow_to(std::vector<T>& v, size_t n) {
  if (n > v.capacity()) v.reserve(n + n / 8);
  v.resize(n);
}

// The decode buffers of packed caches. A packed cache keeps only its bytes; rows() decodes them into
// a buffer borrowed from this thread's arena. The arena lends to the caches of one layer at a time:
// the first rows() of a cache of another layer takes every buffer back (later rows() of a cache
// whose buffer was taken decode again). The engine reads a layer's K and V rows, for every sequence
// of the batch, between their append and the next layer's (engine/cpu/forward.cc store_kv), so
// decoded floats are bounded by one layer of the batch instead of the whole model.
// Epochs are unique across all arenas (a global counter), so a cache read on a thread that has since
// exited can never mistake a later arena at the same address for the one that lent its buffer.
std::atomic<uint64_t> g_next_epoch{1};

struct DecodeArena {
  int layer = -1;
  uint64_t epoch = 0;
  size_t lent = 0;
  std::vector<std::unique_ptr<std::vector<float>>> buffers;

  std::vector<float>* borrow(int for_layer) {
    if (for_layer != layer || epoch == 0) {
      layer = for_layer;
      epoch = g_next_epoch.fetch_add(1, std::memory_order_relaxed);
      lent = 0;
    }
    if (lent == buffers.size()) buffers.push_back(std::make_unique<std::vector<float>>());
    return buffers[lent++].get();
  }
};

DecodeArena& decode_arena() {
  thread_local DecodeArena arena;
  return arena;
}

class QuantCache final : public LayerCache {
 public:
  explicit QuantCache(QuantPlan p) : plan_(std::move(p)), w_(plan_.geometry.width()) {
    is_protected_.assign(w_, 0);
    for (int c : plan_.protected_channels) is_protected_[c] = 1;
    for (int c = 0; c < w_; ++c)
      if (!is_protected_[c]) kept_.push_back(c);
    wc_ = int(kept_.size());
    const bool compat_fit = plan_.compat_paper && plan_.mode != QuantPlan::Mode::kRows;
    residual_mode_ = !compat_fit && (plan_.mode == QuantPlan::Mode::kChannel || plan_.residual > 0);
    code_bytes_ = size_t(packed_bytes(wc_, bits()));
  }

  int64_t size() const override { return size_; }
  const float* rows() const override {
    if (packed()) return decode_rows();
    return plan_.had ? out_.data() : mirror_.data();
  }
  size_t resident_bytes() const override {
    size_t b = (mirror_.capacity() + pending_.capacity() + out_.capacity()) * sizeof(float);
    b += codes_.capacity() + params_.capacity() + (sparse_data_.capacity() + sparse_end_.capacity()) * 4;
    b += protect16_.capacity() * 2 + blocks_.capacity() * sizeof(Block) + segments_.capacity() * sizeof(Segment);
    b += codes_tmp_.capacity() + block_codes_.capacity() + dec_codes_.capacity();
    b += (params_tmp_.capacity() + deq_tmp_.capacity() + row_tmp_.capacity() + dec_params_.capacity()) * sizeof(float);
    b += (blk_lo_.capacity() + blk_hi_.capacity() + blk_params_.capacity() + blk_qscale_.capacity() +
          blk_recip_.capacity()) * sizeof(float);
    return b + sparse_tmp_.capacity() * sizeof(Outlier);
  }
  size_t bytes() const override {
    const size_t residual = size_t(size_ - q_) * size_t(wc_) * kFp16Bytes;
    const size_t protect = size_t(size_) * plan_.protected_channels.size() * kFp16Bytes;
    const size_t tensor = size_t(n_segments_) * (plan_.affine.sym ? 1 : 2) * kIntParamBytes;
    return quantized_bytes_ + residual + protect + tensor;
  }

  int64_t append(const float* rows, int64_t n) override {
    if (residual_direct() && q_ == size_) {
      // Nothing pending: the rows this call quantizes go straight from the input, rounded through
      // fp16 on the way (the residual's storage, SPEC.md §3), into the mirror; only the rows that
      // stay in the window go through pending_. Same blocks, windows and values as the path below.
      const int64_t old = size_, k = quantized_after(old + n) - old;  // rows of this call quantized now
      if (k > 0) {
        mirror_.reserve(size_t(old + n) * w_);
        mirror_.resize(size_t(old + k) * w_);
        if (plan_.mode == QuantPlan::Mode::kChannel) {
          for (int64_t b = 0; b < k; b += plan_.block)
            quantize_block(old + b, rows + b * w_, std::min<int64_t>(plan_.block, k - b), /*fp16_input=*/true);
        } else {
          row_tmp_.resize(w_);
          for (int64_t t = 0; t < k; ++t) {
            round_fp16_span(rows + t * w_, w_, row_tmp_.data());
            quantize_row(old + t, *plan_.rows, row_tmp_.data());
          }
        }
        size_ = q_ = old + k;
        if (k < n) append(rows + k * w_, n - k);
        return old;
      }
    }
    // A long prefill through the residual goes in chunks, so the pending buffer stays small; the
    // blocks and windows quantized are the same as for one call (tensor fits on the whole call).
    const int64_t chunk = std::max<int64_t>(kChunkRows, plan_.residual);
    if (n > chunk && residual_mode_ && plan_.mode != QuantPlan::Mode::kTensor) {
      if (!packed()) mirror_.reserve(size_t(size_ + n) * w_);
      int64_t first = size_ + n;
      for (int64_t t = 0; t < n; t += chunk) first = std::min(first, append(rows + t * w_, std::min(chunk, n - t)));
      return first;
    }
    const int64_t old = size_, q_old = q_;
    ++version_;
    if (!packed()) mirror_.resize(size_t(old + n) * w_);
    if (direct()) {
      if (plan_.mode == QuantPlan::Mode::kTensor && (n_segments_ == 0 || plan_.compat_paper) && n > 0) {
        fit_tensor(rows, n, old);
      }
      // Hot path: every row quantized at once, straight from the input into the mirror.
      const RowQuantizer& rq = plan_.mode == QuantPlan::Mode::kTensor ? *tensor_q_ : *plan_.rows;
      for (int64_t t = 0; t < n; ++t) quantize_row(old + t, rq, rows + t * w_);
      size_ = q_ = old + n;
      return old;
    }
    pending_.resize(size_t(old + n - q_) * wc_);
    const int64_t q_planned = quantized_after(old + n);  // rows below it are quantized in this call
    row_tmp_.resize(w_);  // [width]
    for (int64_t t = 0; t < n; ++t) {
      const float* in = rows + t * w_;
      if (plan_.had) {
        std::copy(in, in + w_, row_tmp_.begin());
        hadamard_rows(row_tmp_.data(), plan_.geometry.n_kv_heads, plan_.geometry.head_dim);
        in = row_tmp_.data();
      }
      if (packed()) {  // protected channels: fp16, [size, n_protected]
        const size_t n_prot = plan_.protected_channels.size(), p0 = protect16_.size();
        grow_to(protect16_, p0 + n_prot);
        for (size_t j = 0; j < n_prot; ++j) protect16_[p0 + j] = float_to_fp16(in[plan_.protected_channels[j]]);
      } else {
        float* m = &mirror_[size_t(old + t) * w_];
        for (int c : plan_.protected_channels) m[c] = round_fp16(in[c]);
      }
      float* p = &pending_[size_t(old + t - q_) * wc_];
      if (wc_ == w_) {
        if (residual_mode_) {
          round_fp16_span(in, w_, p);  // copy and round in one pass
        } else {
          std::copy(in, in + w_, p);
        }
      } else {
        for (int i = 0; i < wc_; ++i) p[i] = in[kept_[i]];
        if (residual_mode_) round_fp16_span(p, wc_, p);
      }
      // The 16-bit residual, until quantized (packed: decoded from pending_ by rows()).
      if (residual_mode_ && old + t >= q_planned && !packed()) write_compact(old + t, p);
    }
    size_ = old + n;
    if (plan_.mode == QuantPlan::Mode::kTensor && (n_segments_ == 0 || plan_.compat_paper) && n > 0)
      fit_tensor(&pending_[size_t(old - q_) * wc_], n, old);
    const int64_t q_new = quantized_after(size_);
    if (q_new > q_) quantize_rows(q_new);
    const int64_t first = q_new > q_old && q_old < old ? q_old : old;
    if (packed() && !residual_mode_) pending_.release();  // a prefill's staging rows: not kept
    // Packed with a residual: keep room for the window and one more row, not a prefill chunk.
    const size_t window = size_t(std::max(plan_.residual, 1) + 1) * wc_;
    if (packed() && residual_mode_ && pending_.capacity() > window + size_t(wc_)) pending_.shrink_to(window);
    if (plan_.had && !packed()) {
      out_.resize(mirror_.size());
      for (int64_t r = first; r < size_; ++r) {
        std::copy(&mirror_[size_t(r) * w_], &mirror_[size_t(r) * w_] + w_, &out_[size_t(r) * w_]);
        hadamard_rows(&out_[size_t(r) * w_], plan_.geometry.n_kv_heads, plan_.geometry.head_dim);
      }
    }
    return first;
  }

 private:
  int bits() const { return plan_.mode == QuantPlan::Mode::kRows ? plan_.rows->code_bits() : plan_.affine.bits; }
  bool packed() const { return plan_.storage == Storage::kPacked; }
  // Rows go from the input to the scheme unchanged: no rotation, split or residual, simulated.
  bool direct() const {
    return !packed() && !plan_.had && wc_ == w_ && !residual_mode_ && plan_.mode != QuantPlan::Mode::kChannel;
  }
  // Same with a residual window (channel, KIVI, token-wise `:rR`; not tensor, which fits per call).
  bool residual_direct() const {
    return !packed() && !plan_.had && wc_ == w_ && residual_mode_ && plan_.mode != QuantPlan::Mode::kTensor;
  }

  // How many rows are quantized once the cache holds `size` rows (SPEC.md §3 streaming): channel
  // quantizes whole residual windows of R rows; token-wise schemes keep the newest R rows 16-bit.
  int64_t quantized_after(int64_t size) const {
    if (!residual_mode_) return size;
    if (plan_.mode == QuantPlan::Mode::kChannel) return q_ + (size - q_) / plan_.residual * plan_.residual;
    return std::max(q_, size - plan_.residual);
  }

  // tensor: (s, z) from this append's rows x [n, wc] (the prefill; every call under --compat paper).
  void fit_tensor(const float* x, int64_t n, int64_t first_row) {
    float lo, hi;
    minmax_span(x, n * wc_, &lo, &hi);
    tensor_q_ = make_int_fixed_quantizer(plan_.affine, wc_, plan_.affine.fit_range(lo, hi));
    ++n_segments_;
    if (packed()) segments_.push_back({first_row, tensor_q_});  // rows from first_row on use it
  }

  void write_compact(int64_t row, const float* compact) {
    float* m = &mirror_[size_t(row) * w_];
    if (wc_ == w_) {
      std::copy(compact, compact + w_, m);
      return;
    }
    for (int i = 0; i < wc_; ++i) m[kept_[i]] = compact[i];
  }

  // Quantizes rows [q_, q_new) (held in pending_) and drops them from the residual.
  void quantize_rows(int64_t q_new) {
    const int64_t n = q_new - q_;
    if (plan_.mode == QuantPlan::Mode::kChannel) {
      const int64_t blk = plan_.compat_paper ? n : plan_.block;
      for (int64_t r = 0; r < n; r += blk) quantize_block(q_ + r, &pending_[size_t(r) * wc_], std::min(blk, n - r));
    } else {
      const RowQuantizer& rq = plan_.mode == QuantPlan::Mode::kTensor ? *tensor_q_ : *plan_.rows;
      for (int64_t r = 0; r < n; ++r) quantize_row(q_ + r, rq, &pending_[size_t(r) * wc_]);
    }
    pending_.erase_front(size_t(n) * wc_);
    q_ = q_new;
  }

  void quantize_row(int64_t row, const RowQuantizer& rq, const float* x) {
    codes_tmp_.resize(wc_);
    params_tmp_.resize(rq.n_params());
    sparse_tmp_.clear();
    const size_t pbytes = size_t(rq.n_params()) * rq.param_bytes();
    if (!packed()) {  // one fused pass, straight into the rows attention reads
      float* out = &mirror_[size_t(row) * w_];
      if (wc_ != w_) {
        deq_tmp_.resize(wc_);
        out = deq_tmp_.data();
      }
      rq.quantize_dequantize(x, out, codes_tmp_.data(), params_tmp_.data(), &sparse_tmp_);
      for (const Outlier& o : sparse_tmp_) out[o.channel] = o.value;
      if (wc_ != w_) write_compact(row, out);
      quantized_bytes_ += code_bytes_ + pbytes + (plan_.sparse_header ? kFp16Bytes + kOutlierBytes * sparse_tmp_.size() : 0);
      return;
    }
    // Packed: store the bytes only; rows() decodes them.
    rq.quantize(x, codes_tmp_.data(), params_tmp_.data(), &sparse_tmp_);
    quantized_bytes_ += code_bytes_ + pbytes + (plan_.sparse_header ? kFp16Bytes + kOutlierBytes * sparse_tmp_.size() : 0);
    const size_t c0 = codes_.size(), p0 = params_.size();
    grow_to(codes_, c0 + code_bytes_);
    pack_codes(codes_tmp_.data(), wc_, bits(), codes_.data() + c0);  // not &codes_[c0]: may be empty
    grow_to(params_, p0 + pbytes);
    encode_params(params_tmp_.data(), rq.n_params(), rq.param_bytes(), params_.data() + p0);
    if (plan_.sparse_header) {
      for (const Outlier& o : sparse_tmp_)
        sparse_data_.push_back(uint32_t(o.channel) | uint32_t(float_to_fp16(o.value)) << 16);
      grow_to(sparse_end_, sparse_end_.size() + 1);
      sparse_end_.back() = uint32_t(sparse_data_.size());
    }
    (void)row;
  }

  // `channel`: x [n, wc] quantized per channel over the n rows (a KIVI key block). fp16_input: x is
  // the raw input, rounded through fp16 here (simulated storage only).
  void quantize_block(int64_t row0, const float* x, int64_t n, bool fp16_input = false) {
    const IntAffine& a = plan_.affine;
    const int np = a.sym ? 1 : 2;
    const int wc = wc_;
    // [wc] each: per-channel range over the block, then its parameters.
    blk_lo_.resize(wc);
    blk_hi_.resize(wc);
    float* lo = blk_lo_.data();
    float* hi = blk_hi_.data();
    // The range is taken over the raw values, rounded through fp16 afterwards when fp16_input: the
    // rounding is monotone, so min(round(x)) = round(min(x)) as values, and the first row reaching a
    // nonzero minimum gives the same bits either way; only a zero result (+0 and -0 tie) or NaN in
    // the first row could differ, and those channels are recomputed on the rounded values below.
    std::copy(x, x + wc, lo);
    std::copy(x, x + wc, hi);
    minmax_rows(x, n, wc, lo, hi);
    if (fp16_input) {
      round_fp16_span(lo, wc, lo);
      round_fp16_span(hi, wc, hi);
      const int c8 = wc / 8 * 8;  // channels below c8 round with F16C, the tail with round_fp16
      auto rounded = [&](int64_t k, int c) {
        const float v = x[k * wc + c];
        return c < c8 ? round_fp16_f16c(v) : round_fp16(v);
      };
      for (int c = 0; c < wc; ++c) {
        if (lo[c] != 0 && hi[c] != 0 && !std::isnan(x[c])) continue;
        float l = rounded(0, c), h = l;  // the definition: the range of the rounded values
        for (int64_t k = 1; k < n; ++k) {
          const float v = rounded(k, c);
          l = std::min(l, v);
          h = std::max(h, v);
        }
        lo[c] = l;
        hi[c] = h;
      }
    }
    blk_params_.resize(size_t(2) * wc_);  // [2, wc]: stored scales, then zero points (0 when sym)
    blk_qscale_.resize(wc_);              // [wc]: fp32 scales the codes are computed with
    float* pf = blk_params_.data();
    const float* zero = pf + wc_;
    a.fit_ranges(lo, hi, wc_, pf, pf + wc_, blk_qscale_.data());
    quantized_bytes_ += size_t(n) * code_bytes_ + size_t(wc_) * np * kIntParamBytes;
    if (!packed()) {  // one fused pass per row, straight into the rows attention reads
      blk_recip_.resize(wc_);
      reciprocal_span(blk_qscale_.data(), wc_, blk_recip_.data());
      deq_tmp_.resize(wc_);
      // The next block of a prefill follows this one in the input: fetch a row of it per row done
      // here, so that its range pass reads from cache (the hardware prefetcher stops at each 4 KiB
      // page, one row). Only a hint: the address is never dereferenced.
      const uintptr_t next = reinterpret_cast<uintptr_t>(x) + uintptr_t(n) * uintptr_t(wc_) * sizeof(float);
      for (int64_t r = 0; r < n; ++r) {
        const uintptr_t pre = next + uintptr_t(r) * uintptr_t(wc_) * sizeof(float);
        for (uintptr_t off = 0; off < uintptr_t(wc_) * sizeof(float); off += 64)
          __builtin_prefetch(reinterpret_cast<const char*>(pre + off), 0, 2);
        float* out = wc_ == w_ ? &mirror_[size_t(row0 + r) * w_] : deq_tmp_.data();
        a.fake_quantize_columns(x + r * wc_, wc_, blk_qscale_.data(), blk_recip_.data(), pf, zero, out, fp16_input);
        if (wc_ != w_) write_compact(row0 + r, out);
      }
      return;
    }
    std::vector<uint8_t>& codes = block_codes_;  // [n, wc]
    codes.resize(size_t(n) * wc_);
    for (int64_t r = 0; r < n; ++r) a.quantize_columns(x + r * wc_, wc_, blk_qscale_.data(), zero, &codes[size_t(r) * wc_]);
    // Packed: [n] packed rows of codes, then [np, wc] fp32 parameters; rows() decodes them.
    const size_t c0 = codes_.size(), p0 = params_.size();
    grow_to(codes_, c0 + size_t(n) * code_bytes_);
    grow_to(params_, p0 + size_t(np) * wc_ * kIntParamBytes);
    encode_params(pf, np * wc_, int(kIntParamBytes), &params_[p0]);
    for (int64_t r = 0; r < n; ++r) pack_codes(&codes[size_t(r) * wc_], wc_, a.bits, &codes_[c0 + size_t(r) * code_bytes_]);
    blocks_.push_back({row0, n, p0});
  }

  // Packed: every row decoded from the stored bytes alone into this thread's decode buffer
  // [size, width]: quantized rows (codes, parameters, outliers), the fp16 residual, the fp16
  // protected channels, then +had rotated back, exactly as the simulated cache computes them.
  const float* decode_rows() const {
    DecodeArena& arena = decode_arena();
    const bool held = dec_ != nullptr && dec_arena_ == &arena && dec_epoch_ == arena.epoch;
    if (held && dec_version_ == version_) return dec_->data();
    if (!held) {
      dec_ = arena.borrow(plan_.layer);
      dec_arena_ = &arena;
      dec_epoch_ = arena.epoch;
    }
    dec_version_ = version_;
    std::vector<float>& out = *dec_;
    out.resize(size_t(size_) * w_);
    const int b = bits();
    dec_codes_.resize(wc_);
    deq_dec_.resize(wc_);
    float* compact = wc_ == w_ ? nullptr : deq_dec_.data();
    auto place = [&](int64_t row, const float* c) {  // compact row -> out row
      float* o = &out[size_t(row) * w_];
      if (compact == nullptr) {
        if (c != o) std::copy(c, c + w_, o);
        return;
      }
      for (int i = 0; i < wc_; ++i) o[kept_[i]] = c[i];
    };
    if (plan_.mode == QuantPlan::Mode::kChannel) {
      const IntAffine& a = plan_.affine;
      const int np = a.sym ? 1 : 2;
      dec_params_.assign(size_t(2) * wc_, 0.0f);  // [2, wc]: scales, zero points (0 when sym)
      for (const Block& blk : blocks_) {
        decode_params(&params_[blk.param_offset], np * wc_, int(kIntParamBytes), dec_params_.data());
        for (int64_t r = blk.row0; r < blk.row0 + blk.n; ++r) {
          unpack_codes(&codes_[size_t(r) * code_bytes_], wc_, b, dec_codes_.data());
          float* dst = compact ? compact : &out[size_t(r) * w_];
          a.dequantize_columns(dec_codes_.data(), wc_, dec_params_.data(), dec_params_.data() + wc_, dst);
          place(r, dst);
        }
      }
    } else {
      size_t seg = 0;
      for (int64_t r = 0; r < q_; ++r) {
        const RowQuantizer* rq = plan_.rows.get();
        if (plan_.mode == QuantPlan::Mode::kTensor) {
          while (seg + 1 < segments_.size() && segments_[seg + 1].first_row <= r) ++seg;
          rq = segments_[seg].q.get();
        }
        const size_t pbytes = size_t(rq->n_params()) * rq->param_bytes();
        dec_params_.resize(rq->n_params());
        unpack_codes(&codes_[size_t(r) * code_bytes_], wc_, b, dec_codes_.data());
        decode_params(params_.data() + size_t(r) * pbytes, rq->n_params(), rq->param_bytes(), dec_params_.data());
        float* dst = compact ? compact : &out[size_t(r) * w_];
        rq->dequantize(dec_codes_.data(), dec_params_.data(), dst);
        if (plan_.sparse_header) {
          for (uint32_t i = r == 0 ? 0 : sparse_end_[r - 1]; i < sparse_end_[r]; ++i)
            dst[sparse_data_[i] & 0xffff] = fp16_to_float(uint16_t(sparse_data_[i] >> 16));
        }
        place(r, dst);
      }
    }
    for (int64_t r = q_; r < size_; ++r) place(r, &pending_.data()[size_t(r - q_) * wc_]);
    const size_t n_prot = plan_.protected_channels.size();
    for (int64_t r = 0; r < size_ && n_prot > 0; ++r)
      for (size_t j = 0; j < n_prot; ++j)
        out[size_t(r) * w_ + plan_.protected_channels[j]] = fp16_to_float(protect16_[size_t(r) * n_prot + j]);
    if (plan_.had)
      for (int64_t r = 0; r < size_; ++r) hadamard_rows(&out[size_t(r) * w_], plan_.geometry.n_kv_heads, plan_.geometry.head_dim);
    return out.data();
  }

  static void encode_params(const float* p, int n, int bytes, uint8_t* out) {
    for (int i = 0; i < n; ++i) {
      if (bytes == 4) {
        std::memcpy(out + 4 * i, &p[i], 4);
      } else {
        const uint16_t h = float_to_fp16(p[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
    }
  }
  static void decode_params(const uint8_t* in, int n, int bytes, float* p) {
    for (int i = 0; i < n; ++i) {
      if (bytes == 4) {
        std::memcpy(&p[i], in + 4 * i, 4);
      } else {
        uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        p[i] = fp16_to_float(h);
      }
    }
  }

  QuantPlan plan_;
  int w_, wc_ = 0;
  std::vector<char> is_protected_;
  std::vector<int> kept_;  // [wc]: compact index -> original channel
  bool residual_mode_ = false;
  size_t code_bytes_ = 0;  // packed codes of one compact row
  int64_t size_ = 0, q_ = 0;  // rows [0, q_) quantized, [q_, size_) in the 16-bit residual
  RowBuffer mirror_;              // [size, width]: what attention reads (rotated domain under +had)
  std::vector<float> out_;      // [size, width]: +had only, mirror_ rotated back
  RowBuffer pending_;       // [size - q, wc]: rows not yet quantized
  std::shared_ptr<RowQuantizer> tensor_q_;
  int64_t n_segments_ = 0;      // tensor parameter sets stored (1, or one per call under --compat paper)
  size_t quantized_bytes_ = 0;  // codes + parameters + outliers of rows [0, q_)
  // Packed storage (no float rows: rows() decodes these).
  struct Block {  // a `channel` block: rows [row0, row0 + n), parameters at params_[param_offset]
    int64_t row0, n;
    size_t param_offset;
  };
  struct Segment {  // `tensor`: rows from first_row on use q
    int64_t first_row;
    std::shared_ptr<RowQuantizer> q;
  };
  std::vector<uint8_t> codes_;        // [q, code_bytes_]
  std::vector<uint8_t> params_;       // per row (token-wise) or per block (channel), fp16 or fp32
  std::vector<uint32_t> sparse_data_;  // outliers of every row in order: channel | fp16 value << 16
  std::vector<uint32_t> sparse_end_;   // [q]: end of row r's outliers in sparse_data_ (nuq with outliers)
  std::vector<uint16_t> protect16_;    // [size, n_protected]: fp16 protected channels
  std::vector<Block> blocks_;
  std::vector<Segment> segments_;
  uint64_t version_ = 0;  // appends so far: a decoded buffer of an older version is stale
  // Packed decode state (rows() is const; the buffer is borrowed from the thread's DecodeArena).
  mutable std::vector<float>* dec_ = nullptr;
  mutable const DecodeArena* dec_arena_ = nullptr;
  mutable uint64_t dec_epoch_ = 0, dec_version_ = 0;
  mutable std::vector<uint8_t> dec_codes_;
  mutable std::vector<float> dec_params_, deq_dec_;
  // Scratch.
  std::vector<uint8_t> codes_tmp_, block_codes_;
  std::vector<float> params_tmp_, deq_tmp_, row_tmp_;
  std::vector<float> blk_lo_, blk_hi_, blk_params_, blk_qscale_, blk_recip_;  // channel blocks: [wc] each, params [2, wc]
  std::vector<Outlier> sparse_tmp_;
};

class Bf16Cache final : public LayerCache {
 public:
  explicit Bf16Cache(CacheGeometry g) : w_(g.width()) {}
  int64_t append(const float* rows, int64_t n) override {
    const int64_t old = size();
    data_.resize(size_t((old + n) * w_));
    float* out = &data_[size_t(old * w_)];
    round_bf16_span(rows, n * w_, out);
    return old;
  }
  int64_t size() const override { return int64_t(data_.size()) / w_; }
  const float* rows() const override { return data_.data(); }
  size_t bytes() const override { return data_.size() * 2; }
  size_t resident_bytes() const override { return data_.capacity() * sizeof(float); }

 private:
  int64_t w_;
  std::vector<float> data_;  // [size, width], bf16-exact
};

}  // namespace

std::unique_ptr<LayerCache> make_quant_cache(QuantPlan plan) { return std::make_unique<QuantCache>(std::move(plan)); }
std::unique_ptr<LayerCache> make_bf16_cache(CacheGeometry g) { return std::make_unique<Bf16Cache>(g); }

}  // namespace kvaudit::kv
