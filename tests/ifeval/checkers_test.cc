// One pass and one fail case (at least) per IFEval instruction id, strict unless said; expected
// verdicts follow the reference checkers (google-research instruction_following_eval).
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "core/error.h"
#include "eval/ifeval/scorer.h"
#include "eval/ifeval/text_rules.h"

namespace kvaudit::eval::ifeval {
namespace {

using nlohmann::json;

Item item(const std::string& id, const json& kwargs) {
  Item it;
  it.instruction_ids = {id};
  it.checks = {make_check(id, kwargs, "test")};
  return it;
}

bool strict(const std::string& id, const json& kwargs, std::string_view r) { return score(item(id, kwargs), r).all_strict; }
bool loose(const std::string& id, const json& kwargs, std::string_view r) { return score(item(id, kwargs), r).all_loose; }

bool S(const std::string& id, const json& kw, std::string_view r) { return strict(id, kw, r); }

TEST(IfevalChecks, ChangeCase) {
  const json cap = {{"capital_frequency", 2}, {"capital_relation", "at least"}};
  EXPECT_TRUE(S("change_case:capital_word_frequency", cap, "The NASA and the FBI met."));
  EXPECT_FALSE(S("change_case:capital_word_frequency", cap, "The NASA met Bob."));
  const json cap_lt = {{"capital_frequency", 2}, {"capital_relation", "less than"}};
  EXPECT_TRUE(S("change_case:capital_word_frequency", cap_lt, "Only ONE word here."));
  EXPECT_FALSE(S("change_case:capital_word_frequency", cap_lt, "I SAY TWO."));
  EXPECT_TRUE(S("change_case:english_capital", json::object(), "THIS IS AN ENGLISH SENTENCE ABOUT THE WEATHER TODAY."));
  EXPECT_FALSE(S("change_case:english_capital", json::object(), "THIS IS An ENGLISH SENTENCE ABOUT THE WEATHER."));
  EXPECT_FALSE(S("change_case:english_capital", json::object(), "DAS IST EIN DEUTSCHER SATZ ÜBER DAS WETTER HEUTE UND MORGEN."));
  EXPECT_TRUE(S("change_case:english_lowercase", json::object(), "this is an english sentence about the weather today."));
  EXPECT_FALSE(S("change_case:english_lowercase", json::object(), "this is an English sentence about the weather today."));
  EXPECT_FALSE(S("change_case:english_lowercase", json::object(), "12345 !!!"));  // nothing cased: islower() is false
}

TEST(IfevalChecks, Combination) {
  const json rep = {{"prompt_to_repeat", "Write a poem about cats."}};
  EXPECT_TRUE(S("combination:repeat_prompt", rep, "  write a POEM about cats. Here it is: meow"));
  EXPECT_FALSE(S("combination:repeat_prompt", rep, "Here is a poem about cats."));
  EXPECT_TRUE(S("combination:two_responses", json::object(), "First answer.\n******\nSecond answer."));
  EXPECT_FALSE(S("combination:two_responses", json::object(), "Same.\n******\nSame."));
  EXPECT_FALSE(S("combination:two_responses", json::object(), "A\n******\n\n******\nB"));  // blank middle part
  EXPECT_TRUE(S("combination:two_responses", json::object(), "******\nA\n******\nB\n******"));  // blank ends allowed
}

TEST(IfevalChecks, DetectableContent) {
  const json ph = {{"num_placeholders", 2}};
  EXPECT_TRUE(S("detectable_content:number_placeholders", ph, "Dear [name], at [address]."));
  EXPECT_FALSE(S("detectable_content:number_placeholders", ph, "Dear [name], at home."));
  const json ps = {{"postscript_marker", "P.S."}};
  EXPECT_TRUE(S("detectable_content:postscript", ps, "Hello.\n\np. s. see you"));
  EXPECT_FALSE(S("detectable_content:postscript", ps, "Hello.\n\nPS see you"));
  const json pps = {{"postscript_marker", "P.P.S"}};
  EXPECT_TRUE(S("detectable_content:postscript", pps, "Hello.\nP.P.S. more"));
  EXPECT_FALSE(S("detectable_content:postscript", pps, "Hello.\nP.S. more"));
}

TEST(IfevalChecks, DetectableFormat) {
  EXPECT_TRUE(S("detectable_format:constrained_response", json::object(), "I think so. My answer is yes."));
  EXPECT_FALSE(S("detectable_format:constrained_response", json::object(), "My answer is Yes."));
  EXPECT_TRUE(S("detectable_format:json_format", json::object(), "```json\n{\"a\": [1, 2]}\n```"));
  EXPECT_TRUE(S("detectable_format:json_format", json::object(), "  \"just a string\"  "));
  EXPECT_FALSE(S("detectable_format:json_format", json::object(), "Here is JSON: {\"a\": 1}"));
  EXPECT_TRUE(S("detectable_format:json_format", json::object(), "{\"x\": NaN, \"y\": [-Infinity], \"NaN\": 1}"));
  EXPECT_FALSE(S("detectable_format:json_format", json::object(), "{\"x\": NaNa}"));
  const json sec = {{"section_spliter", "SECTION"}, {"num_sections", 2}};
  EXPECT_TRUE(S("detectable_format:multiple_sections", sec, "SECTION 1\nintro\nSECTION 2\nbody"));
  EXPECT_FALSE(S("detectable_format:multiple_sections", sec, "Section 1\nintro\nSection 2\nbody"));
  const json bul = {{"num_bullets", 2}};
  EXPECT_TRUE(S("detectable_format:number_bullet_lists", bul, "List:\n* one\n- two\nend"));
  EXPECT_FALSE(S("detectable_format:number_bullet_lists", bul, "List:\n* one\n* two\n* three"));
  EXPECT_FALSE(S("detectable_format:number_bullet_lists", bul, "**bold** line\n* one"));  // ** is not a bullet
  const json hl = {{"num_highlights", 2}};
  EXPECT_TRUE(S("detectable_format:number_highlighted_sections", hl, "*one* and **two**"));
  EXPECT_FALSE(S("detectable_format:number_highlighted_sections", hl, "*one* and * * and ** **"));
  EXPECT_TRUE(S("detectable_format:title", json::object(), "<<My Title>>\ntext"));
  EXPECT_FALSE(S("detectable_format:title", json::object(), "<< >> and <<broken\n>>"));
}

TEST(IfevalChecks, Keywords) {
  const json ex = {{"keywords", {"river", "stone"}}};
  EXPECT_TRUE(S("keywords:existence", ex, "A RIVER ran past the Stones."));
  EXPECT_FALSE(S("keywords:existence", ex, "A river ran past."));
  const json fw = {{"forbidden_words", {"cat", "dog"}}};
  EXPECT_TRUE(S("keywords:forbidden_words", fw, "Cats and doghouses are fine."));  // whole words only
  EXPECT_FALSE(S("keywords:forbidden_words", fw, "My DOG barks."));
  const json fr = {{"keyword", "data"}, {"frequency", 3}, {"relation", "at least"}};
  EXPECT_TRUE(S("keywords:frequency", fr, "Data, data and metadata."));  // substrings count
  EXPECT_FALSE(S("keywords:frequency", fr, "Data and data."));
  const json lf = {{"letter", "q"}, {"let_frequency", 2}, {"let_relation", "less than"}};
  EXPECT_TRUE(S("keywords:letter_frequency", lf, "One Q only."));
  EXPECT_FALSE(S("keywords:letter_frequency", lf, "Quick quiz."));
  const json lk = {{"letter", "k"}, {"let_frequency", 2}, {"let_relation", "at least"}};
  EXPECT_TRUE(S("keywords:letter_frequency", lk, "k \u212A"));  // the Kelvin sign lowercases to k
  // Key 1122 asks for '#' (the reference swaps in a random letter; here the character counts).
  const json hash = {{"letter", "#"}, {"let_frequency", 2}, {"let_relation", "at least"}};
  EXPECT_TRUE(S("keywords:letter_frequency", hash, "#one #two"));
  EXPECT_FALSE(S("keywords:letter_frequency", hash, "#one two"));
}

TEST(IfevalChecks, Language) {
  const json de = {{"language", "de"}};
  EXPECT_TRUE(S("language:response_language", de,
                "Das Wetter ist heute sehr schön, und wir gehen am Nachmittag mit den Kindern in den Park."));
  EXPECT_FALSE(S("language:response_language", de,
                 "The weather is very nice today, and we are going to the park with the children."));
  EXPECT_TRUE(S("language:response_language", de, "12345 ... !!!"));  // no letters: langdetect raises, passed
  const json hi = {{"language", "hi"}};
  EXPECT_TRUE(S("language:response_language", hi, "आज मौसम बहुत अच्छा है और हम दोपहर में बच्चों के साथ पार्क जा रहे हैं।"));
}

TEST(IfevalChecks, LengthConstraints) {
  const json nth = {{"num_paragraphs", 2}, {"nth_paragraph", 2}, {"first_word", "Then"}};
  EXPECT_TRUE(S("length_constraints:nth_paragraph_first_word", nth, "First part.\n\n\"Then, more.\""));
  EXPECT_FALSE(S("length_constraints:nth_paragraph_first_word", nth, "First part.\n\nAfter that."));
  EXPECT_FALSE(S("length_constraints:nth_paragraph_first_word", nth, "One.\n\nthen two.\n\nThree."));  // 3 paragraphs
  const json np = {{"num_paragraphs", 2}};
  EXPECT_TRUE(S("length_constraints:number_paragraphs", np, "One.\n***\nTwo.\n***"));
  EXPECT_FALSE(S("length_constraints:number_paragraphs", np, "One.\n***\n***\nTwo."));  // blank middle paragraph
  const json ns = {{"num_sentences", 3}, {"relation", "less than"}};
  EXPECT_TRUE(S("length_constraints:number_sentences", ns, "Mr. Smith went home. He slept."));
  EXPECT_FALSE(S("length_constraints:number_sentences", ns, "One. Two! Three?"));
  const json nw = {{"num_words", 5}, {"relation", "at least"}};
  EXPECT_TRUE(S("length_constraints:number_words", nw, "don't stop me now, please"));  // don, t: 6 words
  EXPECT_FALSE(S("length_constraints:number_words", nw, "three short words -- ok"));
}

TEST(IfevalChecks, PunctuationAndStartEnd) {
  EXPECT_TRUE(S("punctuation:no_comma", json::object(), "No commas here; none\u3001at all."));  // only ',' counts
  EXPECT_FALSE(S("punctuation:no_comma", json::object(), "Yes, one."));
  const json end = {{"end_phrase", "Any other questions?"}};
  EXPECT_TRUE(S("startend:end_checker", end, "Done. any other questions?\"  \n"));
  EXPECT_FALSE(S("startend:end_checker", end, "Any other questions? Thanks."));
  EXPECT_TRUE(S("startend:quotation", json::object(), "  \"quoted\"\n"));
  EXPECT_FALSE(S("startend:quotation", json::object(), "\""));
  EXPECT_FALSE(S("startend:quotation", json::object(), "\"open only"));
}


TEST(IfevalScore, EmptyResponseFollowsNothing) {
  const auto v = score(item("punctuation:no_comma", json::object()), " \n ");
  EXPECT_FALSE(v.strict[0]);
  EXPECT_FALSE(v.loose[0]);
}

TEST(IfevalScore, LooseDropsFirstAndLastLinesAndStars) {
  const json end = {{"end_phrase", "Bye."}};
  EXPECT_FALSE(strict("startend:end_checker", end, "Hello. Bye.\nLet me know."));
  EXPECT_TRUE(loose("startend:end_checker", end, "Hello. Bye.\nLet me know."));
  EXPECT_FALSE(strict("startend:quotation", json::object(), "Sure:\n\"text\"\nHope it helps."));
  EXPECT_TRUE(loose("startend:quotation", json::object(), "Sure:\n\"text\"\nHope it helps."));
  EXPECT_FALSE(strict("combination:repeat_prompt", json{{"prompt_to_repeat", "Say hi"}}, "**Say hi** hi"));
  EXPECT_TRUE(loose("combination:repeat_prompt", json{{"prompt_to_repeat", "Say hi"}}, "**Say hi** hi"));
  EXPECT_FALSE(loose("punctuation:no_comma", json::object(), "a\nb, c\nd"));
}

TEST(IfevalScore, BadKwargsNameTheEntry) {
  try {
    make_check("keywords:frequency", json{{"keyword", "x"}, {"frequency", "3"}, {"relation", "at least"}}, "f.jsonl:7");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("f.jsonl:7"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("frequency"), std::string::npos);
  }
  EXPECT_THROW(make_check("keywords:nope", json::object(), "x"), UsageError);
  EXPECT_THROW(make_check("keywords:frequency", json{{"keyword", "x"}, {"frequency", 3}, {"relation", "most"}}, "x"),
               UsageError);
}

TEST(IfevalText, PythonStringSemantics) {
  EXPECT_EQ(py_strip("\x1c\u00a0 a b \u3000"), "a b");
  EXPECT_TRUE(py_isupper("ÉCOLE 42"));
  EXPECT_FALSE(py_isupper("42"));
  EXPECT_FALSE(py_isupper("ǅ"));  // titlecase is neither
  EXPECT_TRUE(py_islower("straße"));
  EXPECT_EQ(py_lower("ΟΔΟΣ İ"), "οδος i̇");  // final sigma, full mapping
  EXPECT_EQ(count_words("don't stop_me 3.5"), 5u);
  EXPECT_EQ(count_sentences("Mr. Smith is here. Really?\nYes"), 3u);
}

TEST(IfevalDataset, LoadsAllPromptsOfTheSharedSet) {
  const std::string path = std::string(KVAUDIT_SOURCE_DIR) + "/../shared/datasets/ifeval/input_data.jsonl";
  if (!std::ifstream(path)) GTEST_SKIP() << path << " missing";
  const auto items = load_items(path);
  ASSERT_EQ(items.size(), 541u);
  size_t entries = 0;
  std::set<std::string> ids;
  for (const auto& it : items) {
    entries += it.checks.size();
    ids.insert(it.instruction_ids.begin(), it.instruction_ids.end());
  }
  EXPECT_EQ(entries, 834u);
  // The scorer knows exactly the 25 ids of the data (each has a case in IfevalChecks above).
  const auto known = instruction_ids();
  EXPECT_EQ(std::vector<std::string>(ids.begin(), ids.end()), known);
}

}  // namespace
}  // namespace kvaudit::eval::ifeval
