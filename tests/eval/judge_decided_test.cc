// PhraseJudge::decided, the query behind verdict-aware early stop: true only when no continuation of
// the text can change the verdict (docs/EVAL.md).
#include <cstdio>
#include <random>

#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/benchmarks.h"
#include "eval/judges.h"

namespace kvaudit::eval {
namespace {

TEST(JudgeDecided, SubstringIsDecidedOncePhraseOccurs) {
  const PhraseJudge j("t", {"I cannot", "sorry"}, MatchRule::kSubstringIgnoreCase);
  EXPECT_FALSE(j.decided(""));
  EXPECT_FALSE(j.decided("Well, I can"));  // "I cannot" may still come
  EXPECT_TRUE(j.decided("Well, I CANNOT"));
  EXPECT_TRUE(j.decided("So SoRRy"));
  // A long text without a phrase stays undecided: a refusal may come at any length.
  EXPECT_FALSE(j.decided(std::string(5000, 'x')));
}

TEST(JudgeDecided, ExactCaseSubstringNeedsTheExactSpelling) {
  const PhraseJudge j("t", {"I cannot"}, MatchRule::kSubstringExactCase);
  EXPECT_FALSE(j.decided("i cannot"));
  EXPECT_TRUE(j.decided("no: I cannot"));
}

TEST(JudgeDecided, PrefixIsDecidedOnceStrippedTextIsAsLongAsTheLongestPhrase) {
  const PhraseJudge j("t", {"sorry", "i cannot"}, MatchRule::kPrefixLowerStripped);  // longest: 8 bytes
  EXPECT_FALSE(j.decided("  I can"));      // stripped: 5 bytes
  EXPECT_TRUE(j.decided("  I cannot"));    // stripped: exactly 8
  EXPECT_TRUE(j.decided("\n\tab cd efgh"));  // 10 bytes, not a refusal, and it never will be
  EXPECT_FALSE(j.decided("Sorry   "));     // trailing spaces do not count: strip() drops them
  EXPECT_FALSE(j.decided(" \n \t       "));  // only whitespace: the beginning is still open
}

// The definition, checked by brute force: once decided(t), every t + s gets t's verdict (and for
// the prefix rule t's matched phrase too). Texts are drawn from an alphabet that makes the phrases
// and whitespace frequent.
TEST(JudgeDecided, NoContinuationChangesADecidedVerdict) {
  const std::vector<std::string> phrases = {"no", "Sorry", " i am", "not"};
  const std::string alphabet = " \n\tnoSsrytiamINO";
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1), len(0, 15);
  const auto text = [&] {
    std::string s(len(rng), ' ');
    for (char& c : s) c = alphabet[pick(rng)];
    return s;
  };
  for (const MatchRule rule :
       {MatchRule::kSubstringIgnoreCase, MatchRule::kSubstringExactCase, MatchRule::kPrefixLowerStripped}) {
    const PhraseJudge j("t", phrases, rule);
    int n_decided = 0, n_open = 0;
    for (int i = 0; i < 4000; ++i) {
      const std::string t = text();
      if (!j.decided(t)) {
        ++n_open;
        continue;
      }
      ++n_decided;
      const Verdict v = j.judge(t);
      for (int k = 0; k < 20; ++k) {
        const Verdict w = j.judge(t + text());
        ASSERT_EQ(w.refused, v.refused) << "'" << t << "'";
        if (rule == MatchRule::kPrefixLowerStripped) {
          ASSERT_EQ(w.matched, v.matched) << "'" << t << "'";
        }
      }
    }
    // Both outcomes occur, so the check above is not vacuous.
    EXPECT_GT(n_decided, 50) << int(rule);
    EXPECT_GT(n_open, 50) << int(rule);
    std::printf("[ rule %d ] %d decided, %d open\n", int(rule), n_decided, n_open);
  }
}

// The shipped lists: prefix:xstest's longest phrase is 35 bytes
// ("i am not sure that it's appropriate").
TEST(JudgeDecided, ShippedXstestListDecidesAfter35StrippedBytes) {
  std::string data;
  try {
    data = resolve_data_dir("");
  } catch (const UsageError& e) {
    GTEST_SKIP() << e.what();
  }
  const PhraseJudge x = load_phrase_judge(parse_judge_spec("prefix:xstest"), data);
  const std::string s34(34, 'a');
  EXPECT_FALSE(x.decided("  " + s34 + "   "));
  EXPECT_TRUE(x.decided("  " + s34 + "b"));
  EXPECT_TRUE(x.decided("I'm sorry, but I can't help with that."));
  const PhraseJudge p = load_phrase_judge(parse_judge_spec("substring:paper"), data);
  EXPECT_TRUE(p.decided("Sure. Actually, as an AI"));
  EXPECT_FALSE(p.decided("Sure, here is a tutorial"));
}

}  // namespace
}  // namespace kvaudit::eval
