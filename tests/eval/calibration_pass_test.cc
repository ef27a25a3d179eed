// The calibration pass (SPEC.md §3: fp8 `calib`, `nuq`, `+protect`) on a tiny random-weights model:
// every site is observed with exactly the rows the engine computed, calibrated schemes then build
// caches, and the per-model JSON cache round-trips.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <tuple>

#include "../engine/tiny_model.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "eval/calibration_pass.h"
#include "io/atomic_file.h"

namespace kvaudit::eval {
namespace {

const std::vector<std::vector<int>> kPrompts = {{1, 5, 9, 13, 17}, {2, 4, 8}, {7, 3, 11, 19, 23, 29, 31}};
constexpr int64_t kPromptTokens = 5 + 3 + 7;

TEST(CalibrationPass, ObservesEveryLayerAndStageWithTheEngineRows) {
  const model::Model m = engine::testing::make_tiny_model("llama");
  auto be = engine::make_backend(engine::Device::kCpu, m);
  const kv::Calibration cal = run_calibration(*be, kPrompts);

  // Independently: max |x| per (layer, stage, channel) straight from the hook.
  using Key = std::tuple<int, int>;  // layer, stage
  std::map<Key, std::vector<float>> want;
  engine::Hooks hooks;
  hooks.on_kv = [&](int64_t, int layer, engine::KvStage st, int64_t, const float* rows, int64_t n, int width) {
    auto& v = want[{layer, int(st)}];
    v.resize(size_t(width), 0.0f);
    for (int64_t r = 0; r < n; ++r)
      for (int c = 0; c < width; ++c) v[size_t(c)] = std::max(v[size_t(c)], std::fabs(rows[r * width + c]));
  };
  auto base = std::make_shared<const kv::KvPolicy>();
  for (const auto& p : kPrompts) {
    engine::Sequence seq(m.config, base);
    const engine::SeqInput in{&seq, p, false};
    be->forward({&in, 1}, &hooks);
  }
  for (int l = 0; l < m.config.n_layers; ++l) {
    const std::tuple<kv::Role, bool, engine::KvStage> sites[] = {
        {kv::Role::K, true, engine::KvStage::kKeyPreRope},
        {kv::Role::K, false, engine::KvStage::kKeyPostRope},
        {kv::Role::V, false, engine::KvStage::kValue}};
    for (const auto& [role, pre, stage] : sites) {
      const kv::ChannelStats* s = cal.find(l, role, pre);
      ASSERT_NE(s, nullptr) << "layer " << l;
      EXPECT_EQ(s->rows_seen, kPromptTokens);
      EXPECT_EQ(s->width, m.config.kv_dim());
      EXPECT_EQ(s->max_abs, (want[{l, int(stage)}])) << "layer " << l;  // same floats, bit for bit
    }
  }
}

TEST(CalibrationPass, CalibratedSchemesGenerateOnlyWithCalibration) {
  const model::Model m = engine::testing::make_tiny_model("llama");
  auto be = engine::make_backend(engine::Device::kCpu, m);
  auto cal = std::make_shared<const kv::Calibration>(run_calibration(*be, kPrompts));
  engine::GenerateOptions opt;
  opt.max_new_tokens = 4;
  for (const char* spec : {"fp8e4m3:scale=calib", "nuq4", "int4:token:asym+protect=25%", "int3:tensor:sym@pre+protect=2ch"}) {
    kv::KvPolicy p = kv::KvPolicy::parse(spec, m.config.n_layers);
    ASSERT_TRUE(p.needs_calibration()) << spec;
    const std::vector<engine::GenerateRequest> bare = {{kPrompts[0], std::make_shared<const kv::KvPolicy>(p)}};
    EXPECT_THROW(engine::generate(*be, bare, opt), UsageError) << spec;
    p.calibrate(cal);
    const std::vector<engine::GenerateRequest> reqs = {{kPrompts[0], std::make_shared<const kv::KvPolicy>(p)}};
    EXPECT_EQ(engine::generate(*be, reqs, opt)[0].tokens.size(), 4u) << spec;
  }
}

TEST(CalibrationPass, CacheFileIsWrittenOnceAndReadBack) {
  const model::Model m = engine::testing::make_tiny_model("llama");
  auto be = engine::make_backend(engine::Device::kCpu, m);
  const auto dir = std::filesystem::temp_directory_path() / "kvaudit_calib_pass_test";
  std::filesystem::remove_all(dir);
  const std::string sha = "00ff";
  EXPECT_EQ(calibration_cache_path(sha, dir.string()), (dir / "00ff.json").string());
  const auto first = load_or_run_calibration(*be, kPrompts, sha, dir.string());
  ASSERT_TRUE(std::filesystem::exists(dir / "00ff.json"));
  // Second call: no prompts at all, so the statistics can only come from the file.
  const auto second = load_or_run_calibration(*be, {}, sha, dir.string());
  EXPECT_EQ(second->to_json(), first->to_json());
  std::filesystem::remove_all(dir);
}

// A cache file that is not JSON, has an unknown version or a damaged payload is recomputed and
// replaced, never an error: it is kvaudit's own cache, not the user's input.
TEST(CalibrationPass, UnreadableCacheIsRecomputedAndReplaced) {
  const model::Model m = engine::testing::make_tiny_model("llama");
  auto be = engine::make_backend(engine::Device::kCpu, m);
  const auto dir = std::filesystem::temp_directory_path() / "kvaudit_calib_pass_bad_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto fresh = std::make_shared<const kv::Calibration>(run_calibration(*be, kPrompts));
  const std::string path = (dir / "00ff.json").string();
  for (const std::string& bad : {std::string("{not json"), std::string(R"({"version": 99})"),
                                std::string(R"({"version": 2, "sites": "garbage"})")}) {
    io::write_file_atomic(path, bad);
    const auto got = load_or_run_calibration(*be, kPrompts, "00ff", dir.string());
    EXPECT_EQ(got->to_json(), fresh->to_json()) << bad;
    EXPECT_EQ(nlohmann::json::parse(io::read_file(path)), fresh->to_json()) << bad;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvaudit::eval
