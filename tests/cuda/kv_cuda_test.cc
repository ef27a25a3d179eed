// Quantize-on-write on the device (kv_write_cuda) against the CPU quantizers: for every scheme the
// device stores, the codes and parameters of each row bit for bit, and the rows they decode to
// (kv::kv_value, what attention reads) bit for bit the CPU cache's rows() in both storages.
#include <gtest/gtest.h>

#include "cuda_test_util.h"
#include "engine/cuda/device_buffer.h"
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

// Two sequences, two calls (A: a 6-row prefill then 1 row; B: 3 rows then 2), K and V, as the
// engine calls kv_write_cuda; against the CPU's codes, parameters and cache rows.
TEST_P(KvWriteCuda, CodesParametersAndRowsMatchTheCpu) {
  KVAUDIT_REQUIRE_CUDA();
  const kv::CacheGeometry g{kHeads, kHeadDim};
  const kv::SchemeSpec spec = kv::parse_scheme(GetParam());
  const std::optional<kv::KvLayout> lay = kv::scheme_layout(spec, kv::Role::K, g, {kv::Storage::kSimulated});
  ASSERT_TRUE(lay.has_value()) << GetParam();
  const kv::KvLayout L = *lay;
  const int64_t calls[2][2] = {{6, 3}, {1, 2}};  // [call][sequence] new rows
  const int64_t total[2] = {7, 5};
  struct Seq {
    DeviceBuffer<uint32_t> words[2];  // K, V
    DeviceBuffer<float> params[2];
    std::vector<float> rows[2];       // every row written, host
  } seqs[2];
  for (auto& s : seqs)
    for (int r = 0; r < 2; ++r) {
      s.words[r].resize(size_t(8 * L.row_words()));
      s.params[r].resize(L.tensor ? 3 : size_t(8 * std::max(L.row_params(), 1)));
    }
  int64_t pos[2] = {0, 0};
  for (int call = 0; call < 2; ++call) {
    std::vector<float> k_new, v_new;
    std::vector<cuda::SlotKv> slots;
    std::vector<cuda::SlotRows> rows;
    int64_t off = 0, max_n = 0;
    for (int i = 0; i < 2; ++i) {
      const int64_t n = calls[call][i];
      const auto k = test_rows(n, uint32_t(10 * call + i + 1)), v = test_rows(n, uint32_t(10 * call + i + 50));
      k_new.insert(k_new.end(), k.begin(), k.end());
      v_new.insert(v_new.end(), v.begin(), v.end());
      seqs[i].rows[0].insert(seqs[i].rows[0].end(), k.begin(), k.end());
      seqs[i].rows[1].insert(seqs[i].rows[1].end(), v.begin(), v.end());
      slots.push_back({{L, seqs[i].words[0].data(), seqs[i].params[0].data()},
                       {L, seqs[i].words[1].data(), seqs[i].params[1].data()}, true, L.tensor && call == 0,
                       L.tensor && call == 0});
      rows.push_back({off, n, pos[i]});
      off += n;
      pos[i] += n;
      max_n = std::max(max_n, n);
    }
    DeviceBuffer<float> dk(k_new), dv(v_new);
    DeviceBuffer<cuda::SlotKv> dslots(slots);
    DeviceBuffer<cuda::SlotRows> drows(rows);
    cuda::kv_write_cuda(dslots.data(), drows.data(), 2, max_n, dk.data(), dv.data());
  }
  for (int i = 0; i < 2; ++i) {
    for (int r = 0; r < 2; ++r) {
      const std::vector<uint32_t> words = seqs[i].words[r].download();
      const std::vector<float> params = seqs[i].params[r].download();
      const std::vector<float>& x = seqs[i].rows[r];
      // The CPU cache fed with the same calls, in both storages.
      for (const kv::Storage st : {kv::Storage::kSimulated, kv::Storage::kPacked}) {
        auto cache = kv::make_scheme_cache(spec, r == 0 ? kv::Role::K : kv::Role::V, g, {st});
        cache->append(x.data(), calls[0][i]);
        cache->append(x.data() + calls[0][i] * kWidth, calls[1][i]);
        ASSERT_EQ(cache->size(), total[i]);
        for (int64_t t = 0; t < total[i]; ++t)
          for (int c = 0; c < kWidth; ++c) {
            const float got = kv::kv_value(L, words.data() + t * L.row_words(),
                                           params.data() + (L.tensor ? 0 : t * L.row_params()), c);
            const float want = cache->rows()[t * kWidth + c];
            ASSERT_EQ(kv::float_bits(got), kv::float_bits(want))
                << GetParam() << " seq " << i << (r ? " V" : " K") << " row " << t << " channel " << c << ": " << got
                << " vs " << want;
          }
      }
      // Codes and parameters, row by row.
      kv::AffineParams tensor_p;
      if (L.tensor) {
        tensor_p = kv::IntAffine{L.bits, L.sym}.fit(x.data(), calls[0][i] * kWidth);
        EXPECT_EQ(params[0], tensor_p.scale);
        EXPECT_EQ(params[1], tensor_p.zero);
        EXPECT_EQ(params[2], tensor_p.qscale);
      }
      for (int64_t t = 0; t < total[i]; ++t) {
        const kv::testing::CpuRow want = cpu_row(L, x.data() + t * kWidth, tensor_p);
        for (int c = 0; c < kWidth; ++c)
          ASSERT_EQ(kv::unpack_code(words.data() + t * L.row_words(), c, L.bits), want.codes[size_t(c)])
              << GetParam() << " row " << t << " channel " << c;
        ASSERT_EQ(int(want.params.size()), L.row_params());
        for (int p = 0; p < L.row_params(); ++p)
          ASSERT_EQ(kv::float_bits(params[size_t(t * L.row_params() + p)]), kv::float_bits(want.params[size_t(p)]))
              << GetParam() << " row " << t << " parameter " << p;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Schemes, KvWriteCuda, ::testing::ValuesIn(kv::testing::layout_schemes()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace kvaudit::engine
