// Quantize-on-write on the device (kv_write_cuda) against the CPU quantizers: for every scheme the
// device stores, the rows it holds after each call decode (kv::kv_stored_value, what attention
// reads) bit for bit to the CPU cache's rows() in both storages, residual windows included, and the
// codes and parameters of each row-wise scheme's rows bit for bit.
#include <gtest/gtest.h>

#include <numeric>
#include <span>

#include "core/half.h"
#include "cuda_test_util.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/lt_product.h"
#include "engine/cuda/ops_cuda.h"
#include "kv/layout_reference.h"  // tests/kv: the CPU side of the comparison
#include "kv/policy.h"
#include "kv/registry.h"

namespace kvaudit::engine {
namespace {

using cuda::DeviceBuffer;

using kv::testing::cpu_row;
using kv::testing::kHeadDim;
using kv::testing::kHeads;
using kv::testing::kWidth;
using kv::testing::test_rows;

class KvWriteCuda : public ::testing::TestWithParam<const char*> {};

// Two sequences, four calls each ([call][sequence] new rows: prefills, single rows, a long append),
// K and V, as the engine calls kv_write_cuda; after every call the rows the device stores read back
// (kv::kv_stored_value, what attention reads) as the CPU cache's rows() in both storages; at the end
// the codes and parameters of row-wise schemes against the CPU quantizers'. Keys of llama.cpp blocks
// in llama.cpp's interleaved order.
void check_scheme(const char* scheme) {
  const kv::CacheGeometry g{kHeads, kHeadDim, true};
  const kv::SchemeSpec spec = kv::parse_scheme(scheme);
  constexpr int kCalls = 4;
  const int64_t calls[kCalls][2] = {{6, 3}, {1, 2}, {13, 1}, {1, 9}};
  constexpr int64_t kMaxRows = 32;
  struct Site {
    kv::KvLayout L;
    DeviceBuffer<uint32_t> words;
    DeviceBuffer<float> params;
    DeviceBuffer<uint16_t> residual;
    std::unique_ptr<kv::LayerCache> cache[2];  // simulated, packed
    std::vector<float> rows;                   // every row written, host
  };
  Site sites[2][2];  // [sequence][K, V]
  for (auto& seq : sites)
    for (int r = 0; r < 2; ++r) {
      const kv::Role role = r == 0 ? kv::Role::K : kv::Role::V;
      const std::optional<kv::KvLayout> lay = kv::scheme_layout(spec, role, g, {kv::Storage::kSimulated});
      ASSERT_TRUE(lay.has_value()) << scheme;
      Site& s = seq[r];
      s.L = *lay;
      s.words.resize(size_t(kMaxRows * s.L.row_words()));
      s.params.resize(size_t(std::max<int64_t>({3, kMaxRows * s.L.row_params(), kMaxRows * s.L.block_params()})));
      s.residual.resize(size_t(std::max(s.L.residual, 1) * kWidth));
      s.cache[0] = kv::make_scheme_cache(spec, role, g, {kv::Storage::kSimulated});
      s.cache[1] = kv::make_scheme_cache(spec, role, g, {kv::Storage::kPacked});
    }
  int64_t pos[2] = {0, 0};
  for (int call = 0; call < kCalls; ++call) {
    std::vector<float> k_new, v_new;
    std::vector<cuda::SlotKv> slots;
    std::vector<cuda::SlotRows> rows;
    cuda::KvWriteBounds bounds;
    bounds.width = kWidth;
    int64_t off = 0;
    for (int i = 0; i < 2; ++i) {
      const int64_t n = calls[call][i];
      const auto k = test_rows(n, uint32_t(10 * call + i + 1)), v = test_rows(n, uint32_t(10 * call + i + 50));
      k_new.insert(k_new.end(), k.begin(), k.end());
      v_new.insert(v_new.end(), v.begin(), v.end());
      cuda::KvView views[2];
      for (int r = 0; r < 2; ++r) {
        Site& s = sites[i][r];
        const std::vector<float>& x = r == 0 ? k : v;
        s.rows.insert(s.rows.end(), x.begin(), x.end());
        for (auto& c : s.cache) c->append(x.data(), n);
        const int64_t q = s.L.quantized_rows(pos[i] + n) - s.L.quantized_rows(pos[i]);
        if (s.L.channel())
          bounds.blocks = std::max(bounds.blocks, q / s.L.block_rows);
        else
          bounds.quantized = std::max(bounds.quantized, q);
        bounds.ring = bounds.ring || s.L.residual > 0;
        views[r] = {s.L, s.words.data(), s.params.data(), s.residual.data()};
      }
      const bool fit = sites[i][0].L.tensor && call == 0;
      slots.push_back({views[0], views[1], true, fit, fit});
      bounds.fit = bounds.fit || fit;
      rows.push_back({off, n, pos[i]});
      off += n;
      pos[i] += n;
      bounds.new_rows = std::max(bounds.new_rows, n);
    }
    DeviceBuffer<float> dk(k_new), dv(v_new);
    DeviceBuffer<cuda::SlotKv> dslots(slots);
    DeviceBuffer<cuda::SlotRows> drows(rows);
    cuda::kv_write_cuda(dslots.data(), drows.data(), 2, bounds, dk.data(), dv.data());
    for (int i = 0; i < 2; ++i)
      for (int r = 0; r < 2; ++r) {
        Site& s = sites[i][r];
        const std::vector<uint32_t> words = s.words.download();
        const std::vector<float> params = s.params.download();
        const std::vector<uint16_t> residual = s.residual.download();
        const kv::KvStore store{words.data(), params.data(), residual.data(), s.L.quantized_rows(pos[i])};
        for (const auto& cache : s.cache) {
          ASSERT_EQ(cache->size(), pos[i]);
          for (int64_t t = 0; t < pos[i]; ++t)
            for (int c = 0; c < kWidth; ++c) {
              const float got = kv::kv_stored_value(s.L, store, t, c), want = cache->rows()[t * kWidth + c];
              ASSERT_EQ(kvaudit::float_bits(got), kvaudit::float_bits(want))
                  << scheme << " call " << call << " seq " << i << (r ? " V" : " K") << " row " << t << " of "
                  << pos[i] << " (" << store.quantized << " quantized) channel " << c << ": " << got << " vs " << want;
            }
        }
      }
  }
  // Codes and parameters, row by row (row-wise schemes).
  for (int i = 0; i < 2; ++i)
    for (int r = 0; r < 2; ++r) {
      Site& s = sites[i][r];
      if (s.L.residual > 0) continue;
      const std::vector<uint32_t> words = s.words.download();
      const std::vector<float> params = s.params.download();
      kv::AffineParams tensor_p;
      if (s.L.tensor) {
        tensor_p = kv::IntAffine{s.L.bits, s.L.sym}.fit(s.rows.data(), calls[0][i] * kWidth);
        EXPECT_EQ(params[0], tensor_p.scale);
        EXPECT_EQ(params[1], tensor_p.zero);
        EXPECT_EQ(params[2], tensor_p.qscale);
      }
      for (int64_t t = 0; t < pos[i]; ++t) {
        const kv::testing::CpuRow want = cpu_row(s.L, s.rows.data() + t * kWidth, tensor_p);
        for (int c = 0; c < kWidth; ++c)
          ASSERT_EQ(kv::unpack_code(words.data() + t * s.L.row_words(), c, s.L.bits), want.codes[size_t(c)])
              << scheme << " row " << t << " position " << c;
        ASSERT_EQ(int(want.params.size()), s.L.row_params());
        for (int p = 0; p < s.L.row_params(); ++p)
          ASSERT_EQ(kvaudit::float_bits(params[size_t(t * s.L.row_params() + p)]),
                    kvaudit::float_bits(want.params[size_t(p)]))
              << scheme << " row " << t << " parameter " << p;
      }
    }
}

// Attention over a stored layout reads the values kv_stored_value decodes (the CPU cache's rows()):
// one sequence of 150 rows written by kv_write_cuda (a prefill, then one decode row), then the same
// attention launch over the device's stored K/V and over those decoded rows as plain fp32 rows gives
// the same bits. This binds attention's tile loaders (kv_decode8.cuh's 8-code fast path, the 4-code
// and the scalar loops) to kv/layout.h's formulas, code for code. Query rows of 1 to 3 key chunks.
void check_attention_reads(const char* scheme) {
  const kv::CacheGeometry g{kHeads, kHeadDim, true};
  const kv::SchemeSpec spec = kv::parse_scheme(scheme);
  const int64_t calls[] = {149, 1}, n = 150;
  struct Site {
    kv::KvLayout L;
    DeviceBuffer<uint32_t> words;
    DeviceBuffer<float> params;
    DeviceBuffer<uint16_t> residual;
  };
  Site sites[2];  // K, V
  for (int r = 0; r < 2; ++r) {
    const std::optional<kv::KvLayout> lay =
        kv::scheme_layout(spec, r == 0 ? kv::Role::K : kv::Role::V, g, {kv::Storage::kSimulated});
    ASSERT_TRUE(lay.has_value()) << scheme;
    Site& s = sites[r];
    s.L = *lay;
    s.words.resize(size_t(n * s.L.row_words()));
    s.params.resize(size_t(std::max<int64_t>({3, n * s.L.row_params(), n * s.L.block_params()})));
    s.residual.resize(size_t(std::max(s.L.residual, 1) * kWidth));
  }
  int64_t pos = 0;
  for (const int64_t m : calls) {
    const auto k = test_rows(m, uint32_t(7 + pos)), v = test_rows(m, uint32_t(70 + pos));
    cuda::KvWriteBounds bounds;
    bounds.width = kWidth;
    bounds.new_rows = m;
    cuda::KvView views[2];
    for (int r = 0; r < 2; ++r) {
      Site& s = sites[r];
      const int64_t q = s.L.quantized_rows(pos + m) - s.L.quantized_rows(pos);
      if (s.L.channel())
        bounds.blocks = std::max(bounds.blocks, q / s.L.block_rows);
      else
        bounds.quantized = std::max(bounds.quantized, q);
      bounds.ring = bounds.ring || s.L.residual > 0;
      views[r] = {s.L, s.words.data(), s.params.data(), s.residual.data()};
    }
    const bool fit = sites[0].L.tensor && pos == 0;
    bounds.fit = fit;
    DeviceBuffer<float> dk(k), dv(v);
    DeviceBuffer<cuda::SlotKv> dslots(std::vector<cuda::SlotKv>{{views[0], views[1], true, fit, fit}});
    DeviceBuffer<cuda::SlotRows> drows(std::vector<cuda::SlotRows>{{0, m, pos}});
    cuda::kv_write_cuda(dslots.data(), drows.data(), 1, bounds, dk.data(), dv.data());
    pos += m;
  }
  // The decoded rows, as plain fp32 stores.
  std::vector<DeviceBuffer<float>> plain;
  cuda::KvView stored[2], decoded[2];
  for (int r = 0; r < 2; ++r) {
    Site& s = sites[r];
    const std::vector<uint32_t> words = s.words.download();
    const std::vector<float> params = s.params.download();
    const std::vector<uint16_t> residual = s.residual.download();
    const kv::KvStore store{words.data(), params.data(), residual.data(), s.L.quantized_rows(n)};
    std::vector<float> rows(size_t(n * kWidth));
    for (int64_t t = 0; t < n; ++t)
      for (int c = 0; c < kWidth; ++c) rows[size_t(t * kWidth + c)] = kv::kv_stored_value(s.L, store, t, c);
    plain.emplace_back(rows);
    kv::KvLayout L;
    L.width = kWidth;
    stored[r] = {s.L, s.words.data(), s.params.data(), s.residual.data()};
    decoded[r] = {L, reinterpret_cast<uint32_t*>(plain.back().data()), nullptr, nullptr};
  }
  cpu::AttentionParams p;
  p.n_heads = 2 * kHeads;
  p.n_kv_heads = kHeads;
  p.head_dim = kHeadDim;
  p.scale = 1.0f / std::sqrt(float(kHeadDim));
  const std::vector<cuda::AttnRow> rows = {{0, 149, n}, {0, 63, n}, {0, 64, n}, {0, 100, n}, {0, 0, n}, {0, 127, n}, {0, 128, n}};
  const int64_t q_dim = int64_t(p.n_heads) * kHeadDim;
  DeviceBuffer<float> dq(cuda_testing::uniform(rows.size() * size_t(q_dim), 1.0f, 11));
  DeviceBuffer<cuda::AttnRow> drows(rows);
  for (const cuda::AttnMath math : {cuda::AttnMath::kFp32, cuda::AttnMath::kFp16TensorCores}) {
    std::vector<float> out[2];
    for (int w = 0; w < 2; ++w) {
      DeviceBuffer<cuda::SlotKv> dslots(std::vector<cuda::SlotKv>{
          {w == 0 ? stored[0] : decoded[0], w == 0 ? stored[1] : decoded[1], false, false, false}});
      DeviceBuffer<float> dout(rows.size() * size_t(q_dim));
      cuda::attention_cuda(p, dq.data(), drows.data(), dslots.data(), int64_t(rows.size()), n - 1, dout.data(),
                           nullptr, math);
      out[w] = dout.download();
    }
    EXPECT_TRUE(cuda_testing::same_bits(out[0].data(), out[1].data(), out[0].size()))
        << scheme << (math == cuda::AttnMath::kFp32 ? " fp32" : " fp16 tensor cores");
    if (math != cuda::AttnMath::kFp16TensorCores) continue;
    // A written slot's blocks of one chunk decode the rows before `settled` ahead of their PDL wait,
    // the values into the tile's second chunk (layouts that settles()): the same bits, with the
    // settled rows at the row's position (a decode), none, and all of them.
    for (const int settled : {-1, 0, int(n)}) {
      std::vector<cuda::AttnRow> srows = rows;
      for (cuda::AttnRow& a : srows) a.settled = settled < 0 ? a.pos : settled;
      DeviceBuffer<cuda::AttnRow> dsrows(srows);
      DeviceBuffer<cuda::SlotKv> dslots(std::vector<cuda::SlotKv>{{stored[0], stored[1], true, false, false}});
      DeviceBuffer<float> dout(rows.size() * size_t(q_dim));
      cuda::attention_cuda(p, dq.data(), dsrows.data(), dslots.data(), int64_t(rows.size()), n - 1, dout.data(),
                           nullptr, math);
      EXPECT_TRUE(cuda_testing::same_bits(dout.download().data(), out[0].data(), out[0].size()))
          << scheme << " settled " << settled;
    }
    // Positions 63, 64 and 127, 128 are runs: prefill tiles of two rows that cross a chunk's edge,
    // decoding the stored rows once for both; the row kernel's bits.
    std::vector<int64_t> order(rows.size());
    std::iota(order.begin(), order.end(), int64_t(0));
    std::vector<cuda::AttnTile> tiles;
    std::vector<int64_t> rest;
    cuda::attn_tiles(rows, order, tiles, rest);
    ASSERT_EQ(tiles.size(), 2u);
    DeviceBuffer<cuda::AttnTile> dtiles(tiles);
    DeviceBuffer<int64_t> drest(rest);
    const cuda::AttnTiles at{dtiles.data(), int64_t(tiles.size()), drest.data(), int64_t(rest.size())};
    DeviceBuffer<cuda::SlotKv> dslots(std::vector<cuda::SlotKv>{{stored[0], stored[1], false, false, false}});
    DeviceBuffer<float> dout(rows.size() * size_t(q_dim));
    cuda::attention_cuda(p, dq.data(), drows.data(), dslots.data(), int64_t(rows.size()), n - 1, dout.data(), nullptr,
                         math, nullptr, &at);
    EXPECT_TRUE(cuda_testing::same_bits(dout.download().data(), out[0].data(), out[0].size())) << scheme << " tiles";
  }
}

// One set of KV storage per run for the RoPE store tests: each scheme's sequence, [sequence][K, V]
// words of 8 rows, sentinel-filled; every slot written on the device.
constexpr uint32_t kSentinel = 0xabababab;
struct SentinelStore {
  std::vector<DeviceBuffer<uint32_t>> words;
  std::vector<DeviceBuffer<float>> params;
  std::vector<cuda::SlotKv> slots;
  explicit SentinelStore(std::span<const char* const> schemes) {
    constexpr int64_t kRows = 8;
    const kv::CacheGeometry g{kHeads, kHeadDim, true};
    words.reserve(2 * schemes.size());
    params.reserve(2 * schemes.size());
    for (const char* scheme : schemes) {
      cuda::KvView views[2];
      for (int r = 0; r < 2; ++r) {
        const kv::Role role = r == 0 ? kv::Role::K : kv::Role::V;
        const kv::KvLayout L = *kv::scheme_layout(kv::parse_scheme(scheme), role, g, {kv::Storage::kSimulated});
        words.emplace_back(std::vector<uint32_t>(size_t(kRows * L.row_words()), kSentinel));
        params.emplace_back(size_t(std::max<int64_t>(3, kRows * L.row_params())));
        views[r] = {L, words.back().data(), params.back().data(), nullptr};
      }
      slots.push_back({views[0], views[1], true, false, false});
    }
  }
};
std::vector<std::vector<uint32_t>> words_of(const SentinelStore& st) {
  std::vector<std::vector<uint32_t>> w;
  for (const auto& b : st.words) w.push_back(b.download());
  return w;
}

// The q/k/v + RoPE launch storing the fp32 and bf16 caches' new rows (qkv_rope_cuda with a RopeKv):
// three sequences of one batch (fp16: two rows at 5, bf16: a row at 3, int8: a row at 0). Its q, k
// and v are the plain launch's bits; the fp16 and bf16 sites then hold kv_write_cuda's words, the
// int8 site is untouched; kv_write_cuda with rope_wrote stores the int8 site and leaves the others
// alone (sentinel words stay).
TEST(RopeKvCuda, TheRopeLaunchStoresWhatTheKvWriteStores) {
  KVAUDIT_REQUIRE_CUDA();
  const int n_heads = 2 * kHeads, half = kHeadDim / 2;
  const int64_t n = 4, q_dim = int64_t(n_heads) * kHeadDim, m = q_dim + 2 * kWidth;
  const char* schemes[3] = {"fp16", "bf16", "int8:token:asym"};
  const std::vector<cuda::SlotRows> slot_rows = {{0, 2, 5}, {2, 1, 3}, {3, 1, 0}};
  const std::vector<cuda::AttnRow> attn = {{0, 5, 7}, {0, 6, 7}, {1, 3, 4}, {2, 0, 1}};
  DeviceBuffer<float> parts(cuda_testing::uniform(size_t(n * m), 2.0f, 61));
  DeviceBuffer<float> cs(cuda_testing::uniform(size_t(n * 2 * half), 1.0f, 62));
  DeviceBuffer<float> bias_k(cuda_testing::uniform(size_t(kWidth), 0.5f, 63));
  const cuda::QkvBias bias{nullptr, bias_k.data(), nullptr};
  const cuda::PartSums ps{parts.data(), m};
  cuda::KvWriteBounds bounds;
  bounds.width = kWidth;
  bounds.new_rows = 2;
  bounds.quantized = 2;
  DeviceBuffer<cuda::SlotRows> drows(slot_rows);
  DeviceBuffer<cuda::AttnRow> dattn(attn);
  // The reference: the plain launch, then the KV write of every site.
  SentinelStore ref(schemes);
  DeviceBuffer<cuda::SlotKv> ref_slots(ref.slots);
  DeviceBuffer<float> q0(size_t(n * q_dim)), kv0(size_t(2 * n * kWidth));
  cuda::qkv_rope_cuda(ps, bias, q0.data(), n_heads, kv0.data(), kv0.data() + n * kWidth, kHeads, n, kHeadDim, half,
                      cs.data());
  cuda::kv_write_cuda(ref_slots.data(), drows.data(), 3, bounds, kv0.data(), kv0.data() + n * kWidth);
  const auto want = words_of(ref);
  // The launch that stores: the same q, k, v; the fp16 and bf16 sites written, the int8 one not yet.
  SentinelStore got(schemes);
  DeviceBuffer<cuda::SlotKv> got_slots(got.slots);
  DeviceBuffer<float> q1(size_t(n * q_dim)), kv1(size_t(2 * n * kWidth));
  const cuda::RopeKv store{got_slots.data(), dattn.data()};
  cuda::qkv_rope_cuda(ps, bias, q1.data(), n_heads, kv1.data(), kv1.data() + n * kWidth, kHeads, n, kHeadDim, half,
                      cs.data(), &store);
  EXPECT_EQ(q1.download(), q0.download());
  EXPECT_EQ(kv1.download(), kv0.download());
  auto words = words_of(got);
  for (int site = 0; site < 6; ++site) {
    if (site < 4) EXPECT_EQ(words[size_t(site)], want[size_t(site)]) << schemes[site / 2] << (site % 2 ? " V" : " K");
    else EXPECT_EQ(words[size_t(site)], std::vector<uint32_t>(words[size_t(site)].size(), kSentinel)) << "int8 site";
  }
  bounds.rope_wrote = true;
  cuda::kv_write_cuda(got_slots.data(), drows.data(), 3, bounds, kv1.data(), kv1.data() + n * kWidth);
  EXPECT_EQ(words_of(got), want);
  // The KV write alone with rope_wrote: the fp16 and bf16 sites keep their sentinels.
  SentinelStore alone(schemes);
  DeviceBuffer<cuda::SlotKv> alone_slots(alone.slots);
  cuda::kv_write_cuda(alone_slots.data(), drows.data(), 3, bounds, kv0.data(), kv0.data() + n * kWidth);
  words = words_of(alone);
  for (int site = 0; site < 6; ++site) {
    if (site < 4) EXPECT_EQ(words[size_t(site)], std::vector<uint32_t>(words[size_t(site)].size(), kSentinel));
    else EXPECT_EQ(words[size_t(site)], want[size_t(site)]) << "int8 site";
  }
}

TEST_P(KvWriteCuda, AttentionReadsTheDecodedRows) {
  KVAUDIT_REQUIRE_CUDA();
  check_attention_reads(GetParam());
}

TEST_P(KvWriteCuda, CodesParametersAndRowsMatchTheCpu) {
  KVAUDIT_REQUIRE_CUDA();
  check_scheme(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Schemes, KvWriteCuda, ::testing::ValuesIn(kv::testing::layout_schemes()),
                         [](const auto& info) { return kv::testing::test_name(info.param); });

INSTANTIATE_TEST_SUITE_P(Windows, KvWriteCuda, ::testing::ValuesIn(kv::testing::window_schemes()),
                         [](const auto& info) { return kv::testing::test_name(info.param); });

// The q/k/v product that rotates its own tiles stores what the q/k/v + RoPE launch stores
// (gemv_qkv_rope_bf16_cuda with a RopeKv, every tensor-tile variant, one and two rows): an fp16
// sequence at position 5 and a bf16 one at 3, the K bias on; q, k, v and every word the same bits.
TEST(RopeKvCuda, TheQkvProductStoresWhatTheRopeLaunchStores) {
  KVAUDIT_REQUIRE_CUDA();
  const int n_heads = 2 * kHeads, half = kHeadDim / 2;
  const int64_t k = 256, q_dim = int64_t(n_heads) * kHeadDim, m = q_dim + 2 * kWidth;
  const char* schemes[2] = {"fp16", "bf16"};
  const std::vector<cuda::AttnRow> attn = {{0, 5, 6}, {1, 3, 4}};
  std::vector<uint16_t> wbits, xbits;
  for (const float f : cuda_testing::uniform(size_t(m * k), 0.2f, 81)) wbits.push_back(float_to_bf16(f));
  for (const float f : cuda_testing::uniform(size_t(2 * k), 1.0f, 82)) xbits.push_back(float_to_bf16(f));
  DeviceBuffer<uint16_t> dw(wbits), dx(xbits);
  DeviceBuffer<float> cs(cuda_testing::uniform(size_t(2 * 2 * half), 1.0f, 83));
  DeviceBuffer<float> bias_k(cuda_testing::uniform(size_t(kWidth), 0.5f, 84));
  DeviceBuffer<cuda::AttnRow> dattn(attn);
  for (int64_t rows = 1; rows <= 2; ++rows)
    for (const cuda::GemvKernel& g : cuda::gemv_kernels()) {
      if (!g.tensor) continue;
      SCOPED_TRACE("rows " + std::to_string(rows) + ", " + std::to_string(g.stages) + " stages");
      // [0]: the plain product, then the launch; [1]: the product alone
      SentinelStore st[2] = {SentinelStore(schemes), SentinelStore(schemes)};
      std::vector<float> qkv[2];
      for (int run = 0; run < 2; ++run) {
        DeviceBuffer<cuda::SlotKv> slots(st[run].slots);
        DeviceBuffer<float> out(size_t(rows * m)), sums(size_t(rows * m));
        const cuda::QkvRope o{{nullptr, bias_k.data(), nullptr}, out.data(), out.data() + rows * q_dim,
                              out.data() + rows * (q_dim + kWidth), n_heads, kHeads, kHeadDim, half, cs.data(),
                              cuda::RopeKv{slots.data(), dattn.data()}};
        ASSERT_TRUE(cuda::gemv_qkv_rope_fits(g, rows, k, o));
        if (run == 0) {
          cuda::gemv_bf16_cuda(g, dw.data(), m, dx.data(), rows, k, k, 1, sums.data(), m, rows * m);
          cuda::qkv_rope_cuda(cuda::PartSums{sums.data(), m}, o.bias, o.q, n_heads, o.k, o.v, kHeads, rows, kHeadDim,
                              half, o.cs, &o.store);
        } else {
          cuda::gemv_qkv_rope_bf16_cuda(g, dw.data(), dx.data(), rows, k, o);
        }
        qkv[run] = out.download();
      }
      EXPECT_EQ(qkv[1], qkv[0]);
      const auto want = words_of(st[0]), got = words_of(st[1]);
      EXPECT_EQ(got, want);
      // the rows were written: a sentinel-only store would pass the comparison above
      EXPECT_NE(want[0], std::vector<uint32_t>(want[0].size(), kSentinel));
      EXPECT_EQ(want[2] != std::vector<uint32_t>(want[2].size(), kSentinel), rows == 2);
    }
}

}  // namespace
}  // namespace kvaudit::engine
