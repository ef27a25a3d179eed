#include "eval/runner.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/results.h"
#include "same_results.h"

namespace kvaudit::eval {
namespace {

// A stand-in backend with scripted logits, so the loop is tested without weights. Vocabulary:
// 0 = stop, 1 = "I cannot", 2 = "Sure", 3 = " ok", ids >= 10 are prompts (one token each).
// After a prompt p: the baseline refuses when p is even; any other policy only when p % 4 == 0,
// so prompts with p % 4 == 2 flip. Then " ok", then stop.
class ScriptedBackend : public engine::Backend {
 public:
  explicit ScriptedBackend(const model::Model& m) : model_(m) {}
  engine::Device device() const override { return engine::Device::kCpu; }
  const model::Model& model() const override { return model_; }
  engine::Logits forward(std::span<const engine::SeqInput> batch, const engine::Hooks*) override {
    engine::Logits out;
    out.n_vocab = kVocab;
    out.first_row.push_back(0);
    size_t n_baseline = 0;
    for (const auto& in : batch) n_baseline += in.seq->policy().is_baseline();
    mixed_calls += n_baseline != 0 && n_baseline != batch.size();
    max_batch = std::max(max_batch, batch.size());
    for (const auto& in : batch) {
      const int t = in.tokens.back();
      int next = 0;
      if (t >= 10) {
        ++prefills;
        const int p = t - 10;
        next = (in.seq->policy().is_baseline() ? p % 2 == 0 : p % 4 == 0) ? 1 : 2;
      } else if (t == 1 || t == 2) {
        next = 3;
      }
      std::vector<float> row(kVocab, 0.0f);
      row[size_t(next)] = 1.0f;
      out.data.insert(out.data.end(), row.begin(), row.end());
      out.first_row.push_back(out.first_row.back() + 1);
    }
    return out;
  }
  int prefills = 0;
  int mixed_calls = 0;    // forward calls whose batch holds the baseline and another scheme
  size_t max_batch = 0;   // most sequences in one forward call
  static constexpr int kVocab = 64;

 private:
  const model::Model& model_;
};

model::Model tiny_model() {
  model::Model m;
  m.config.n_layers = 1;
  m.config.n_kv_heads = 1;
  m.config.head_dim = 32;
  m.config.n_vocab = ScriptedBackend::kVocab;
  return m;
}

std::vector<Prompt> prompts(size_t n) {
  std::vector<Prompt> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back({"t:" + std::to_string(i), i < n / 2 ? "a" : "b", "prompt " + std::to_string(i), ""});
  return out;
}

GenerationIo io() {
  GenerationIo g;
  g.encode = [](const Prompt& p) { return std::vector<int>{10 + std::stoi(p.id.substr(2))}; };
  g.decode = [](const std::vector<int>& ids) {
    static const char* words[] = {"", "I cannot", "Sure", " ok"};
    std::string s;
    for (int id : ids) s += words[id];
    return s;
  };
  g.judge = [](const std::vector<const Prompt*>&, const std::vector<std::string>& responses) {
    std::vector<Verdict> v;
    for (const auto& r : responses) v.push_back({r.rfind("I cannot", 0) == 0, r.rfind("I cannot", 0) == 0 ? "I cannot" : ""});
    return v;
  };
  g.judge_name = "scripted";
  return g;
}

std::vector<SchemeRun> schemes() {
  return {{"fp16", nullptr},
          {"int8", std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int8"))}};
}

RunnerOptions options() {
  RunnerOptions o;
  o.gen.max_new_tokens = 8;
  o.gen.batch_size = 3;
  o.gen.stop_ids = {0};
  o.chunk = 5;
  return o;
}

std::filesystem::path fresh(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "kvaudit_eval_runner";
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir / name);
  return dir / name;
}

TEST(Runner, AllSchemesShareOneRunAndMetricsFollow) {
  const model::Model m = tiny_model();
  ScriptedBackend be(m);
  const auto ps = prompts(16);
  const auto path = fresh("all.jsonl");
  SamplesWriter w(path.string(), 0);
  RunStats stats;
  const SampleMap samples = run_samples(be, ps, schemes(), io(), options(), {}, w, nullptr, &stats);
  EXPECT_EQ(samples.size(), 32u);
  EXPECT_EQ(stats.generated, 32u);
  EXPECT_EQ(be.prefills, 32);
  EXPECT_EQ(samples.at({"t:2", "fp16"}).response, "I cannot ok");
  EXPECT_EQ(samples.at({"t:2", "int8"}).response, "Sure ok");
  const auto res = aggregate_results(ps, schemes(), samples);
  ASSERT_EQ(res.size(), 2u);
  ASSERT_EQ(res[1].benches.size(), 2u);
  // bench a = prompts 0..7: baseline refuses 0,2,4,6; int8 keeps 0,4 -> 2 flips of 4.
  const BenchMetrics& a = res[1].benches[0].metrics;
  EXPECT_EQ(res[1].benches[0].bench, "a");
  EXPECT_EQ(a.n, 8);
  EXPECT_EQ(a.flips, 2);
  EXPECT_EQ(a.reverse_flips, 0);
  EXPECT_DOUBLE_EQ(a.flip_rate, 0.5);
  EXPECT_DOUBLE_EQ(a.refusal_rate, 0.25);
  EXPECT_DOUBLE_EQ(res[0].benches[0].metrics.flip_rate, 0.0);
  EXPECT_EQ(read_samples(path.string()).samples.size(), 32u);
}

// The two schedules of bench/eval_sharing.cc: shared batches mix schemes in one forward call,
// one-scheme-at-a-time never does; the samples are the same.
TEST(Runner, SharedAndOneSchemeAtATimeGiveTheSameSamples) {
  const model::Model m = tiny_model();
  const auto ps = prompts(4);
  RunnerOptions opt = options();
  opt.gen.batch_size = 8;
  opt.chunk = 0;  // 4 x batch: one engine::generate call per pass
  ScriptedBackend shared_be(m);
  SamplesWriter shared_w(fresh("shared.jsonl").string(), 0);
  const SampleMap shared = run_samples(shared_be, ps, schemes(), io(), opt, {}, shared_w, nullptr);
  opt.share_batches = false;
  ScriptedBackend single_be(m);
  SamplesWriter single_w(fresh("single.jsonl").string(), 0);
  RunStats stats;
  const SampleMap single = run_samples(single_be, ps, schemes(), io(), opt, {}, single_w, nullptr, &stats);
  EXPECT_GT(shared_be.mixed_calls, 0);
  EXPECT_EQ(shared_be.max_batch, 8u);  // 4 prompts x 2 schemes in one batch
  EXPECT_EQ(single_be.mixed_calls, 0);
  EXPECT_EQ(single_be.max_batch, 4u);  // a pass holds one scheme's 4 prompts only
  EXPECT_EQ(stats.generated, 8u);
  EXPECT_EQ(single_be.prefills, 8);
  ASSERT_EQ(single.size(), shared.size());
  for (const auto& [k, s] : shared) EXPECT_EQ(sample_json_line(single.at(k)), sample_json_line(s));
}

TEST(Runner, ResumeAfterKillComputesNothingTwiceAndMatches) {
  const model::Model m = tiny_model();
  const auto ps = prompts(12);
  // Uninterrupted reference.
  const auto ref_path = fresh("ref.jsonl");
  ScriptedBackend ref_be(m);
  SamplesWriter ref_w(ref_path.string(), 0);
  const SampleMap ref = run_samples(ref_be, ps, schemes(), io(), options(), {}, ref_w, nullptr);

  // A run killed after 2 chunks (10 samples) and in the middle of the 11th line.
  const auto path = fresh("killed.jsonl");
  {
    std::ifstream in(ref_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string all = ss.str();
    size_t cut = 0;
    for (int i = 0; i < 10; ++i) cut = all.find('\n', cut) + 1;
    std::ofstream(path, std::ios::binary) << all.substr(0, cut + 20);
  }
  const SamplesLog log = read_samples(path.string());
  ASSERT_EQ(log.samples.size(), 10u);
  ASSERT_TRUE(log.dropped_partial_tail);
  ScriptedBackend be(m);
  SamplesWriter w(path.string(), log.valid_bytes);
  RunStats stats;
  const SampleMap resumed = run_samples(be, ps, schemes(), io(), options(), log, w, nullptr, &stats);
  EXPECT_EQ(stats.resumed, 10u);
  EXPECT_EQ(stats.generated, 14u);
  EXPECT_EQ(be.prefills, 14);  // no sample computed twice
  ASSERT_EQ(resumed.size(), ref.size());
  for (const auto& [k, s] : ref) {
    EXPECT_EQ(resumed.at(k).response, s.response);
    EXPECT_EQ(resumed.at(k).refused, s.refused);
  }
  EXPECT_TRUE(same_results(aggregate_results(ps, schemes(), ref), aggregate_results(ps, schemes(), resumed)));
  EXPECT_EQ(read_samples(path.string()).samples.size(), 24u);
  EXPECT_FALSE(read_samples(path.string()).dropped_partial_tail);
}

TEST(Runner, RefusesALogFromAnotherJudge) {
  const model::Model m = tiny_model();
  ScriptedBackend be(m);
  SamplesLog log;
  log.samples.push_back({"t:0", "a", "fp16", "substring:paper", "prompt 0", "x", false, "", std::nullopt, ""});
  const auto path = fresh("judge.jsonl");
  SamplesWriter w(path.string(), 0);
  EXPECT_THROW(run_samples(be, prompts(2), schemes(), io(), options(), log, w, nullptr), UsageError);
  log.samples[0].judge = "scripted";
  log.samples[0].prompt = "changed";
  EXPECT_THROW(run_samples(be, prompts(2), schemes(), io(), options(), log, w, nullptr), UsageError);
}

// A sample generated with other settings (another model, --max-new-tokens, --system ...) is not
// reused: the rerun stops naming the file, the sample and what differs. Samples of prompts or
// schemes this run does not ask for, and samples from before the field, are not checked.
TEST(Runner, RefusesToReuseASampleGeneratedWithOtherSettings) {
  const model::Model m = tiny_model();
  GenerationIo g = io();
  g.gen = R"({"max_new_tokens":8,"model":"/m.gguf","system":""})";
  const auto path = fresh("settings.jsonl");
  {
    ScriptedBackend be(m);
    SamplesWriter w(path.string(), 0);
    run_samples(be, prompts(4), schemes(), g, options(), {}, w, nullptr);
  }
  SamplesLog log = read_samples(path.string());
  ASSERT_EQ(log.samples.size(), 8u);
  EXPECT_EQ(log.samples[0].gen, g.gen);  // read back as written
  ScriptedBackend be(m);
  SamplesWriter w(path.string(), log.valid_bytes);
  RunStats stats;
  run_samples(be, prompts(4), schemes(), g, options(), log, w, nullptr, &stats);
  EXPECT_EQ(stats.resumed, 8u);

  GenerationIo other = g;
  other.gen = R"({"max_new_tokens":16,"model":"/m.gguf","system":"Be brief."})";
  try {
    run_samples(be, prompts(4), schemes(), other, options(), log, w, nullptr);
    ADD_FAILURE() << "no UsageError";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string() + ": sample t:0 (fp16) was generated with other settings (max_new_tokens: 8 "
                                       "there, 16 in this run; system: \"\" there, \"Be brief.\" in this run)"),
              std::string::npos)
        << msg;
  }
  // Other prompts and other schemes under the new settings: nothing of the log is reused, nothing refused.
  std::vector<Prompt> later = prompts(6);
  later.erase(later.begin(), later.begin() + 4);
  EXPECT_NO_THROW(run_samples(be, later, schemes(), other, options(), log, w, nullptr));
  const std::vector<SchemeRun> int4 = {{"int4", std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int4"))}};
  EXPECT_NO_THROW(run_samples(be, prompts(4), int4, other, options(), log, w, nullptr));
  // A log from before the field: nothing to compare, resumed as before.
  for (auto& s : log.samples) s.gen.clear();
  RunStats old;
  run_samples(be, prompts(4), schemes(), other, options(), log, w, nullptr, &old);
  EXPECT_EQ(old.resumed, 8u);
}

}  // namespace
}  // namespace kvaudit::eval
