// Verdict-aware early stop end to end (issue 9 item 6): the same prompts and schemes run with early
// stop off and on, on a tiny random-weights model with a real byte-level tokenizer (multi-byte
// characters split across tokens, whitespace tokens, special ids); verdicts, flips and every metric
// must be equal, while fewer tokens are generated. Texts differ by design (the stored response is
// the prefix up to the stop) and are only checked to be prefixes.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "../engine/tiny_model.h"
#include "eval/results.h"
#include "eval/runner.h"
#include "same_results.h"
#include "text/tokenizer.h"

namespace kvaudit::eval {
namespace {

std::filesystem::path fresh(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "kvaudit_eval_early_stop";
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir / name);
  return dir / name;
}

// tests/engine/tiny_model.h's qwen2 (untied, so greedy text does not just echo the last token), its
// embedding and output head widened to the tokenizer's vocabulary.
model::Model tiny_model(int n_vocab) {
  model::Model m = engine::testing::make_tiny_model("qwen2", 3);
  const size_t d = size_t(m.config.d_model);
  m.config.n_vocab = n_vocab;
  std::mt19937 rng(11);
  m.weights.embed = model::WeightMatrix::f32(engine::testing::random_weights(size_t(n_vocab) * d, 1.0f, rng), n_vocab, int64_t(d));
  m.weights.lm_head = model::WeightMatrix::f32(
      engine::testing::random_weights(size_t(n_vocab) * d, 1.0f / std::sqrt(float(d)), rng), n_vocab, int64_t(d));
  return m;
}

std::vector<Prompt> prompts() {
  const char* words[] = {"how", "do", "I", "make", "a", "cake", "kill", "process", "the", "über", "naïve", "€5"};
  std::mt19937 rng(5);
  std::uniform_int_distribution<size_t> w(0, std::size(words) - 1);
  std::vector<Prompt> out;
  for (int i = 0; i < 24; ++i) {
    std::string text;
    for (int k = 0; k < 3 + i % 5; ++k) text += std::string(k ? " " : "") + words[w(rng)];
    const bool xs = i >= 12;
    out.push_back({(xs ? "xstest:" : "adv:") + std::to_string(i), xs ? "xstest" : "adv", text,
                   xs ? (i % 2 ? "safe" : "unsafe") : ""});
  }
  return out;
}

class EarlyStop : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = std::make_unique<text::Tokenizer>(
        text::Tokenizer::from_hf_json(std::string(KVAUDIT_FIXTURES) + "/text/bytelevel/tokenizer.json", ""));
    model_ = std::make_unique<model::Model>(tiny_model(tok_->vocab_size()));
    backend_ = engine::make_backend(engine::Device::kCpu, *model_);
    schemes_ = {{"fp16", nullptr},
                {"int2:token:asym", std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int2:token:asym"))},
                {"int4:token:asym", std::make_shared<const kv::KvPolicy>(kv::KvPolicy::parse("int4:token:asym"))}};
    opt_.gen.max_new_tokens = 40;
    opt_.gen.batch_size = 5;
    opt_.gen.stop_ids = {1, 2, 4};  // the fixture's end-of-text / end-of-turn ids
  }

  // Runs every prompt under every scheme, judged by `judge`, with early stop on or off.
  SampleMap run(const PhraseJudge& judge, bool early, RunStats* stats, const std::string& file) {
    GenerationIo io;
    io.encode = [&](const Prompt& p) { return tok_->encode(p.text, false); };
    io.decode = [&](const std::vector<int>& ids) { return tok_->decode(ids, true); };
    io.judge = [&](const std::vector<const Prompt*>&, const std::vector<std::string>& rs) {
      std::vector<Verdict> v;
      for (const auto& r : rs) v.push_back(judge.judge(r));
      return v;
    };
    io.judge_name = judge.name();
    if (early) {
      io.new_stream = [&] {
        return [d = std::make_shared<text::StreamDecoder>(*tok_, true)](int id) { return d->push(id); };
      };
      io.decided = [&](std::string_view t) { return judge.decided(t); };
    }
    SamplesWriter w(fresh(file).string(), 0);
    return run_samples(*backend_, prompts_, schemes_, io, opt_, {}, w, nullptr, stats);
  }

  // Off vs on: equal verdicts and metrics, stored responses are prefixes, and tokens are saved.
  void expect_same_results(const PhraseJudge& judge, const SampleMap& full, const RunStats& full_stats,
                           const std::string& file) {
    RunStats st;
    const SampleMap early = run(judge, true, &st, file);
    ASSERT_EQ(early.size(), full.size());
    size_t n_stopped = 0, n_refused = 0;
    for (const auto& [key, f] : full) {
      const Sample& e = early.at(key);
      EXPECT_EQ(e.refused, f.refused) << key.first << " " << key.second << ": '" << e.response << "' vs '" << f.response << "'";
      EXPECT_TRUE(f.response.starts_with(e.response)) << key.first << " " << key.second;
      EXPECT_EQ(f.stopped_early_at, std::nullopt);
      if (e.stopped_early_at) {
        ++n_stopped;
        EXPECT_TRUE(judge.decided(e.response));
      } else {
        EXPECT_EQ(e.response, f.response);
      }
      n_refused += f.refused;
    }
    const auto a = aggregate_results(prompts_, schemes_, full), b = aggregate_results(prompts_, schemes_, early);
    ASSERT_EQ(a.size(), b.size());
    int64_t flips = 0;
    for (size_t s = 0; s < a.size(); ++s) {
      ASSERT_EQ(a[s].benches.size(), b[s].benches.size());
      for (size_t k = 0; k < a[s].benches.size(); ++k) {
        // Every metric, undefined (NaN) equal only to undefined, as results.json writes them.
        EXPECT_TRUE(same_metrics(a[s].benches[k].metrics, b[s].benches[k].metrics))
            << a[s].scheme << " " << a[s].benches[k].bench;
        flips += a[s].benches[k].metrics.flips + a[s].benches[k].metrics.reverse_flips;
      }
    }
    // Not vacuous: some sequences stopped, some refused and some did not, and verdicts flip.
    EXPECT_EQ(st.stopped_early, n_stopped);
    EXPECT_GT(n_stopped, 5u);
    EXPECT_GT(n_refused, 5u);
    EXPECT_LT(n_refused, full.size() - 5);
    EXPECT_GT(flips, 0);
    EXPECT_LT(st.tokens, full_stats.tokens);
    std::printf("[ %s ] %zu of %zu stopped early; tokens %zu -> %zu\n", judge.name().c_str(), n_stopped,
                full.size(), full_stats.tokens, st.tokens);
  }

  std::unique_ptr<text::Tokenizer> tok_;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<engine::Backend> backend_;
  std::vector<SchemeRun> schemes_;
  RunnerOptions opt_;
  std::vector<Prompt> prompts_ = prompts();
};

// A substring list built from the full run's baseline texts: the 3-byte string found inside the
// most responses short of all of them, so some responses contain it early and others never.
TEST_F(EarlyStop, SubstringJudgeGivesTheFullRunsVerdictsAndMetrics) {
  const PhraseJudge none("none", {"\x01"}, MatchRule::kSubstringIgnoreCase);
  RunStats full_stats;
  const SampleMap full = run(none, false, &full_stats, "substring_full.jsonl");
  std::map<std::string, size_t> count;  // 3-byte substrings -> responses holding one
  for (const auto& [key, s] : full) {
    std::set<std::string> seen;
    for (size_t i = 0; i + 3 <= std::min<size_t>(s.response.size(), 24); ++i) seen.insert(s.response.substr(i, 3));
    for (const auto& g : seen) ++count[g];
  }
  std::string phrase;
  size_t best = 0;
  for (const auto& [g, n] : count)
    if (n > best && n < full.size() / 2) best = n, phrase = g;
  ASSERT_FALSE(phrase.empty());
  const PhraseJudge judge("substring:test", {phrase, "\xC3\xBC"}, MatchRule::kSubstringIgnoreCase);  // + "ü"
  // The full run judged by this list (judging is a pure function of the text).
  SampleMap full_judged = full;
  for (auto& [key, s] : full_judged) {
    const Verdict v = judge.judge(s.response);
    s.refused = v.refused;
    s.matched = v.matched;
  }
  expect_same_results(judge, full_judged, full_stats, "substring_early.jsonl");
}

// A prefix list (the xstest rule) whose longest phrase is 10 bytes: every response longer than
// that stops there, whatever its verdict.
TEST_F(EarlyStop, PrefixJudgeGivesTheFullRunsVerdictsAndMetrics) {
  const PhraseJudge none("none", {"\x01"}, MatchRule::kSubstringIgnoreCase);
  RunStats full_stats;
  const SampleMap full = run(none, false, &full_stats, "prefix_full.jsonl");
  // Beginnings of the baseline's stripped, lower-cased responses: 2 bytes of adv:0's, and 10 bytes
  // of the first response whose beginning a quantized scheme changes (a flip).
  const auto beginning = [&](const std::string& id, const std::string& scheme, size_t n) {
    std::string r = full.at({id, scheme}).response;
    r.erase(0, std::min(r.find_first_not_of(" \t\n\r\f\v"), r.size()));
    return ascii_lower(r.substr(0, n));
  };
  std::vector<std::string> phrases = {beginning("adv:0", "fp16", 2)};
  for (const Prompt& p : prompts_)
    if (beginning(p.id, "fp16", 10) != beginning(p.id, "int2:token:asym", 10) && beginning(p.id, "fp16", 10).size() == 10) {
      phrases.push_back(beginning(p.id, "fp16", 10));
      break;
    }
  ASSERT_EQ(phrases.size(), 2u);
  const PhraseJudge judge("prefix:test", phrases, MatchRule::kPrefixLowerStripped);
  SampleMap full_judged = full;
  for (auto& [key, s] : full_judged) {
    const Verdict v = judge.judge(s.response);
    s.refused = v.refused;
    s.matched = v.matched;
  }
  expect_same_results(judge, full_judged, full_stats, "prefix_early.jsonl");
}

}  // namespace
}  // namespace kvaudit::eval
