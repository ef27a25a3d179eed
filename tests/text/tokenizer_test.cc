// Token-id identity with HF `tokenizers` on the fixture corpus (SPEC.md §2), decode round trips,
// add_special_tokens, streaming decode and malformed input.
#include "text/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "fixture_reader.h"
#include "io/gguf.h"

namespace kvaudit::text {
namespace {

using testing::fixture_path;

std::string gguf_path(const std::string& file) {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/kvaudit/" + file;
}

struct TokCase {
  std::string name;
  std::string source;  // tokenizer.json fixture dir, or a GGUF file name under ~/.cache/kvaudit
  bool gguf;
};

class CorpusTest : public ::testing::TestWithParam<TokCase> {
 protected:
  Tokenizer load() const {
    const TokCase& c = GetParam();
    if (c.gguf) return Tokenizer::from_gguf_metadata(io::GgufFile::open(gguf_path(c.source))->metadata(), c.source);
    return Tokenizer::from_hf_json(fixture_path(c.source + "/tokenizer.json"), "");
  }
  void SetUp() override {
    if (GetParam().gguf && !std::filesystem::exists(gguf_path(GetParam().source)))
      GTEST_SKIP() << gguf_path(GetParam().source) << " absent (scripts/fetch-models.sh)";
  }
};

TEST_P(CorpusTest, IdsIdenticalToHuggingFace) {
  const Tokenizer tok = load();
  const auto corpus = testing::read_corpus();
  const auto expected = testing::read_expected(GetParam().name);
  ASSERT_EQ(corpus.size(), expected.size());
  ASSERT_GE(corpus.size(), 2000u);
  int mismatches = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const auto ids = tok.encode(corpus[i], false);
    if (ids != expected[i].ids && ++mismatches <= 5)
      ADD_FAILURE() << "line " << i + 1 << " " << nlohmann::json(corpus[i]).dump() << "\n got  "
                    << nlohmann::json(ids).dump() << "\n want " << nlohmann::json(expected[i].ids).dump();
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_P(CorpusTest, DecodeMatchesHuggingFace) {
  const Tokenizer tok = load();
  const auto corpus = testing::read_corpus();
  const auto expected = testing::read_expected(GetParam().name);
  int mismatches = 0, round_trips = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string got = tok.decode(expected[i].ids);
    const std::string& want = expected[i].round_trips ? corpus[i] : expected[i].decoded;
    round_trips += expected[i].round_trips;
    if (got != want && ++mismatches <= 5)
      ADD_FAILURE() << "line " << i + 1 << "\n got  " << nlohmann::json(got).dump() << "\n want "
                    << nlohmann::json(want).dump();
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(round_trips, static_cast<int>(corpus.size()) / 2);  // the corpus is mostly round-trippable text
}

TEST_P(CorpusTest, AddSpecialMatchesHuggingFace) {
  const Tokenizer tok = load();
  const auto cases = nlohmann::json::parse(testing::read_file(fixture_path("special_" + GetParam().name + ".json")));
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases)
    EXPECT_EQ(tok.encode(c.at("text").get<std::string>(), true), c.at("ids").get<std::vector<int>>())
        << c.at("text").dump();
}

TEST_P(CorpusTest, StreamingDecodeEqualsWholeDecode) {
  const Tokenizer tok = load();
  const auto corpus = testing::read_corpus();
  const auto expected = testing::read_expected(GetParam().name);
  for (size_t i = 0; i < corpus.size(); i += 7) {
    StreamDecoder sd(tok);
    std::string streamed;
    for (int id : expected[i].ids) streamed += sd.push(id);
    streamed += sd.flush();
    EXPECT_EQ(streamed, tok.decode(expected[i].ids)) << "line " << i + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, CorpusTest,
                         ::testing::Values(TokCase{"bytelevel", "bytelevel", false},
                                           TokCase{"spm_llama2", "spm_llama2", false},
                                           TokCase{"spm_metaspace", "spm_metaspace", false},
                                           TokCase{"smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", true},
                                           TokCase{"qwen25coder", "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf", true}),
                         [](const auto& info) { return info.param.name; });

TEST(Tokenizer, InvalidUtf8NeverCrashesAndIsReplaced) {
  const Tokenizer tok = Tokenizer::from_hf_json(fixture_path("bytelevel/tokenizer.json"), "");
  const std::string bad = "a\xff\xfe b\xe2\x82 c\xc0\xaf";
  // Invalid bytes are read as U+FFFD each, as the sanitized text would be.
  EXPECT_EQ(tok.encode(bad, false), tok.encode("a\xEF\xBF\xBD\xEF\xBF\xBD b\xEF\xBF\xBD\xEF\xBF\xBD c\xEF\xBF\xBD\xEF\xBF\xBD", false));
}

TEST(Tokenizer, OutOfRangeIdIsUsageError) {
  const Tokenizer tok = Tokenizer::from_hf_json(fixture_path("bytelevel/tokenizer.json"), "");
  const std::vector<int> ids = {tok.vocab_size()};
  EXPECT_THROW(tok.decode(ids), UsageError);
}

TEST(Tokenizer, SpecialTokensAndStops) {
  const Tokenizer tok = Tokenizer::from_hf_json(fixture_path("bytelevel/tokenizer.json"), "");
  const int eot = *tok.token_to_id("<|eot_id|>");
  EXPECT_TRUE(tok.is_special(eot));
  const auto stops = tok.eos_ids();
  EXPECT_NE(std::find(stops.begin(), stops.end(), eot), stops.end());
  const std::vector<int> ids = {eot, *tok.token_to_id("a")};
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "a");
  EXPECT_EQ(tok.decode(ids, false), "<|eot_id|>a");
}

TEST(Tokenizer, MissingFileIsUsageError) {
  EXPECT_THROW(Tokenizer::from_hf_json(fixture_path("nope/tokenizer.json"), ""), UsageError);
  EXPECT_THROW(Tokenizer::load_for_model(fixture_path("nope")), UsageError);
}

// The UsageError message of loading a regression input of text_tokenizer_json_fuzz, or "" if it loads.
std::string hf_json_error(const std::string& p) {
  try {
    Tokenizer::from_hf_json(p, "");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

const std::string kTokJsonRegressions = std::string(KVAUDIT_SOURCE_DIR) + "/fuzz/regressions/text_tokenizer_json/";

// post_processor_id_outside_vocab: a post-processor whose special-token ids lie outside the
// vocabulary made encode(add_special) return them. Now a UsageError naming the file.
TEST(Tokenizer, PostProcessorIdOutsideTheVocabularyIsUsageError) {
  const std::string p = kTokJsonRegressions + "post_processor_id_outside_vocab";
  EXPECT_EQ(hf_json_error(p).rfind(p + ": post_processor adds token id 151644, outside the vocabulary of ", 0), 0u)
      << hf_json_error(p);
}

// vocab_id_float_out_of_int_range (UBSan): a vocabulary id written as a 54-digit number parses as a
// double, and get<int>() of it was an undefined conversion. Now a UsageError naming the file.
TEST(Tokenizer, VocabIdThatIsNotAnIntIsUsageError) {
  const std::string p = kTokJsonRegressions + "vocab_id_float_out_of_int_range";
  const std::string err = hf_json_error(p);
  EXPECT_EQ(err.rfind(p + ": token id 1.52", 0), 0u) << err;
  EXPECT_NE(err.find("is not an integer in 0..16777216"), std::string::npos) << err;
}

TEST(Tokenizer, StreamHoldsBackPartialUtf8) {
  const Tokenizer tok = Tokenizer::from_hf_json(fixture_path("spm_llama2/tokenizer.json"), "");
  // U+1D11E is not in the small vocabulary: byte fallback gives four <0xXX> tokens.
  const auto ids = tok.encode("x\U0001D11E", false);
  ASSERT_GE(ids.size(), 5u);
  StreamDecoder sd(tok);
  std::string out;
  for (size_t i = 0; i + 1 < ids.size(); ++i) out += sd.push(ids[i]);
  EXPECT_EQ(out, "x");  // three of the emoji's four bytes are held back
  out += sd.push(ids.back());
  EXPECT_EQ(out, "x\U0001D11E");
}

}  // namespace
}  // namespace kvaudit::text
