// Tokenizer normalizers (SPEC.md §2): each type on hand-checked Unicode cases, and token ids
// identical to HF `tokenizers` for Qwen2-style tokenizer.json files with NFC and NFKC and for small
// byte-level tokenizers with NFD / NFKD / Lowercase / Strip / Replace / Prepend sequences
// (fixtures: tools/make_normalizer_fixtures.py, tests/fixtures/text/normalizer/).
#include "text/normalizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "core/error.h"
#include "fixture_reader.h"
#include "io/gguf.h"
#include "text/tokenizer.h"
#include "text/tokenizer_impl.h"

namespace kvaudit::text {
namespace {

namespace fs = std::filesystem;
using testing::fixture_path;

std::string normalize(const nlohmann::json& spec, std::string s) {
  const auto n = build_normalizer(spec, "test");
  n->apply(s);
  return s;
}

// ---------------------------------------------------------------- each normalizer type
TEST(Normalizer, UnicodeForms) {
  const nlohmann::json nfc = {{"type", "NFC"}}, nfd = {{"type", "NFD"}}, nfkc = {{"type", "NFKC"}},
                       nfkd = {{"type", "NFKD"}};
  EXPECT_EQ(normalize(nfc, "cafe\u0301"), "caf\u00e9");
  EXPECT_EQ(normalize(nfc, "\u212b \u2126 \u212a"), "\u00c5 \u03a9 K");             // singletons
  EXPECT_EQ(normalize(nfc, "a\u0301\u0323"), "\u1ea1\u0301");                         // reorder, then compose
  EXPECT_EQ(normalize(nfc, "\u1100\u1161\u11a8"), "\uac01");                          // conjoining jamo -> 각
  EXPECT_EQ(normalize(nfc, "\u0958"), "\u0915\u093c");                                // composition exclusion
  EXPECT_EQ(normalize(nfc, "\ufb01 \u2460 \uff21"), "\ufb01 \u2460 \uff21");          // compatibility kept
  EXPECT_EQ(normalize(nfd, "caf\u00e9 \uac01"), "cafe\u0301 \u1100\u1161\u11a8");
  EXPECT_EQ(normalize(nfkc, "\ufb01 \u2460 \uff21 \u338f \u216b \uff76\uff9e"), "fi 1 A kg XII \u30ac");
  EXPECT_EQ(normalize(nfkc, "x\u00b2 \u00bd \u3000"), "x2 1\u20442  ");
  EXPECT_EQ(normalize(nfkd, "\ufb01 \u30ac \u00e9"), "fi \u30ab\u3099 e\u0301");
  EXPECT_EQ(normalize(nfc, "plain ASCII"), "plain ASCII");
  EXPECT_EQ(normalize(nfc, ""), "");
}

TEST(Normalizer, LowercaseIsPerCharacterFullMapping) {
  const nlohmann::json lc = {{"type", "Lowercase"}};
  EXPECT_EQ(normalize(lc, "ABC def"), "abc def");
  EXPECT_EQ(normalize(lc, "\u0130stanbul"), "i\u0307stanbul");  // full mapping: İ -> i + combining dot
  EXPECT_EQ(normalize(lc, "\u039f\u0394\u039f\u03a3"), "\u03bf\u03b4\u03bf\u03c3");  // no final-sigma context
  EXPECT_EQ(normalize(lc, "\u1e9e \u0410\u0411 \U00010400 \u2160 \u24b7"), "\u00df \u0430\u0431 \U00010428 \u2170 \u24d1");
  EXPECT_EQ(normalize(lc, "\u01c4\u01c5"), "\u01c6\u01c6");
}

TEST(Normalizer, StripUsesUnicodeWhiteSpace) {
  EXPECT_EQ(normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, "\u3000\u00a0 x y\t\u2028\u0085"),
            "x y");
  EXPECT_EQ(normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}, " \n x "), "x ");
  EXPECT_EQ(normalize({{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}}, " x \u2003"), " x");
  // U+200B and U+FEFF are not White_Space (Rust's char::is_whitespace agrees).
  EXPECT_EQ(normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, "\u200bx\ufeff"), "\u200bx\ufeff");
  EXPECT_EQ(normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, " \t "), "");
}

TEST(Normalizer, ReplacePrependSequence) {
  EXPECT_EQ(normalize({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}, "a b  c"),
            "a\u2581b\u2581\u2581c");
  EXPECT_EQ(normalize({{"type", "Replace"}, {"pattern", {{"Regex", "\\s{2,}"}}}, {"content", " "}}, "a \t b\u3000\u3000c"),
            "a b c");
  EXPECT_EQ(normalize({{"type", "Prepend"}, {"prepend", "\u2581"}}, "x"), "\u2581x");
  EXPECT_EQ(normalize({{"type", "Prepend"}, {"prepend", "\u2581"}}, ""), "");  // HF prepends only to non-empty text
  const nlohmann::json seq = {{"type", "Sequence"},
                              {"normalizers",
                               {{{"type", "NFKD"}},
                                {{"type", "Replace"}, {"pattern", {{"Regex", "\\p{Mn}+"}}}, {"content", ""}},
                                {{"type", "Lowercase"}},
                                {{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}}}};
  EXPECT_EQ(normalize(seq, "  Cr\u00e8me BR\u00dbL\u00c9E \ufb01  "), "creme brulee fi");
}

TEST(Normalizer, UnknownTypeIsUsageErrorNamingTheFile) {
  nlohmann::json j = nlohmann::json::parse(testing::read_file(fixture_path("bytelevel/tokenizer.json")));
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Precompiled"}}}}};
  const fs::path dir = fs::temp_directory_path() / ("kvaudit_norm_unknown_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "tokenizer.json").string();
  std::ofstream(path) << j.dump();
  try {
    Tokenizer::from_hf_json(path, "");
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("unsupported normalizer type 'Precompiled'"), std::string::npos) << msg;
  }
  fs::remove_all(dir);
}

// ---------------------------------------------------------------- identity with HF tokenizers
std::string gguf_path(const std::string& file) {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/kvaudit/" + file;
}

std::string norm_fixture(const std::string& rel) { return fixture_path("normalizer/" + rel); }

std::vector<std::string> read_jsonl(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line).get<std::string>());
  return out;
}

// One line of normalizer/ids_<name>.txt (tools/make_normalizer_fixtures.py write_ids).
struct ExpectedLine {
  std::vector<int> ids, special_ids;  // add_special_tokens false / true
  bool round_trips = true;
  std::string decoded;
};

std::vector<int> parse_ids(const std::string& s) {
  std::vector<int> out;
  std::istringstream in(s);
  for (int id; in >> id;) out.push_back(id);
  return out;
}

std::vector<ExpectedLine> read_expected(const std::string& name) {
  std::vector<ExpectedLine> out;
  std::ifstream f(norm_fixture("ids_" + name + ".txt"));
  for (std::string line; std::getline(f, line);) {
    const size_t t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    EXPECT_NE(t2, std::string::npos) << line;
    ExpectedLine e;
    e.ids = parse_ids(line.substr(0, t1));
    const std::string status = line.substr(t1 + 1, t2 - t1 - 1), special = line.substr(t2 + 1);
    if (status != "=") {
      e.round_trips = false;
      e.decoded = nlohmann::json::parse(status).get<std::string>();
    }
    if (special.starts_with("!")) {
      e.special_ids = parse_ids(special.substr(1));
    } else {
      const size_t bar = special.find('|');
      e.special_ids = parse_ids(special.substr(0, bar));
      e.special_ids.insert(e.special_ids.end(), e.ids.begin(), e.ids.end());
      for (int id : parse_ids(special.substr(bar + 1))) e.special_ids.push_back(id);
    }
    out.push_back(std::move(e));
  }
  return out;
}

struct NormCase {
  std::string name;      // test name
  std::string fixture;   // ids_<fixture>.txt and the tokenizer's directory under normalizer/
  enum Kind { kJson, kSkeletonPlusGguf, kGguf } kind;
};

// qwen2_*: HF's tokenizer.json minus vocab and merges, which come from the GGUF through kvaudit's
// GGUF reader; written out and loaded with from_hf_json, the path a Hub tokenizer.json takes.
Tokenizer load_skeleton(const std::string& fixture) {
  const auto gguf = nlohmann::json::parse(testing::read_file(norm_fixture(fixture + "/gguf.json")));
  const std::string file = gguf.at("file").get<std::string>();
  TokenizerExtras extras;
  const nlohmann::json from_gguf = gguf_to_tokenizer_json(io::GgufFile::open(gguf_path(file))->metadata(), extras, file);
  nlohmann::json j = nlohmann::json::parse(testing::read_file(norm_fixture(fixture + "/tokenizer.skeleton.json")));
  EXPECT_EQ(from_gguf.at("model").at("vocab").size(), gguf.at("n_vocab").get<size_t>());
  EXPECT_EQ(from_gguf.at("model").at("merges").size(), gguf.at("n_merges").get<size_t>());
  j["model"]["vocab"] = from_gguf.at("model").at("vocab");
  j["model"]["merges"] = from_gguf.at("model").at("merges");
  const fs::path dir = fs::temp_directory_path() / ("kvaudit_norm_" + fixture + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << j.dump();
  Tokenizer tok = Tokenizer::from_hf_json((dir / "tokenizer.json").string(), "");
  fs::remove_all(dir);
  return tok;
}

class NormalizerCorpusTest : public ::testing::TestWithParam<NormCase> {
 protected:
  static std::string qwen_gguf() {
    const auto gguf = nlohmann::json::parse(testing::read_file(norm_fixture("qwen2_nfc/gguf.json")));
    return gguf.at("file").get<std::string>();
  }
  void SetUp() override {
    if (GetParam().kind != NormCase::kJson && !fs::exists(gguf_path(qwen_gguf())))
      GTEST_SKIP() << gguf_path(qwen_gguf()) << " absent (scripts/fetch-models.sh qwen-coder-0.5b)";
  }
  // Loading a 152k vocabulary takes seconds: once per case for the whole suite.
  const Tokenizer& tok() const {
    static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
    const NormCase& c = GetParam();
    auto& t = cache[c.name];
    if (!t) {
      if (c.kind == NormCase::kJson)
        t = std::make_unique<Tokenizer>(Tokenizer::from_hf_json(norm_fixture(c.fixture + "/tokenizer.json"), ""));
      else if (c.kind == NormCase::kSkeletonPlusGguf)
        t = std::make_unique<Tokenizer>(load_skeleton(c.fixture));
      else
        t = std::make_unique<Tokenizer>(
            Tokenizer::from_gguf_metadata(io::GgufFile::open(gguf_path(qwen_gguf()))->metadata(), qwen_gguf()));
    }
    return *t;
  }
  // qwen2_*: the text corpus followed by the normalization cases; the small tokenizers: the latter.
  std::vector<std::string> corpus() const {
    std::vector<std::string> out;
    if (GetParam().kind != NormCase::kJson) out = testing::read_corpus();
    for (auto& s : read_jsonl(norm_fixture("extra.jsonl"))) out.push_back(std::move(s));
    return out;
  }
};

TEST_P(NormalizerCorpusTest, IdsIdenticalToHuggingFace) {
  const auto corpus = this->corpus();
  const auto expected = read_expected(GetParam().fixture);
  ASSERT_EQ(corpus.size(), expected.size());
  ASSERT_GE(corpus.size(), GetParam().kind == NormCase::kJson ? 700u : 2000u);
  size_t plain_ok = 0, special_ok = 0, shown = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const auto ids = tok().encode(corpus[i], false), sp = tok().encode(corpus[i], true);
    plain_ok += ids == expected[i].ids;
    special_ok += sp == expected[i].special_ids;
    if ((ids != expected[i].ids || sp != expected[i].special_ids) && ++shown <= 5)
      ADD_FAILURE() << "line " << i + 1 << " " << nlohmann::json(corpus[i]).dump() << "\n got  "
                    << nlohmann::json(ids).dump() << " / " << nlohmann::json(sp).dump() << "\n want "
                    << nlohmann::json(expected[i].ids).dump() << " / " << nlohmann::json(expected[i].special_ids).dump();
  }
  std::printf("%s: %zu/%zu identical without special tokens, %zu/%zu with\n", GetParam().name.c_str(), plain_ok,
              corpus.size(), special_ok, corpus.size());
  EXPECT_EQ(plain_ok, corpus.size());
  EXPECT_EQ(special_ok, corpus.size());
}

TEST_P(NormalizerCorpusTest, DecodeMatchesHuggingFace) {
  const auto corpus = this->corpus();
  const auto expected = read_expected(GetParam().fixture);
  ASSERT_EQ(corpus.size(), expected.size());
  int mismatches = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string got = tok().decode(expected[i].ids);
    const std::string& want = expected[i].round_trips ? corpus[i] : expected[i].decoded;
    if (got != want && ++mismatches <= 5)
      ADD_FAILURE() << "line " << i + 1 << "\n got  " << nlohmann::json(got).dump() << "\n want "
                    << nlohmann::json(want).dump();
  }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Normalizers, NormalizerCorpusTest,
    ::testing::Values(NormCase{"qwen2_nfc", "qwen2_nfc", NormCase::kSkeletonPlusGguf},
                      NormCase{"qwen2_nfkc", "qwen2_nfkc", NormCase::kSkeletonPlusGguf},
                      // The GGUF itself: tokenizer.ggml.pre = "qwen2" implies Qwen2's NFC normalizer.
                      NormCase{"gguf_qwen2", "qwen2_nfc", NormCase::kGguf},
                      NormCase{"small_nfd_lower", "small_nfd_lower", NormCase::kJson},
                      NormCase{"small_nfkd_replace", "small_nfkd_replace", NormCase::kJson},
                      NormCase{"small_nfc_seq", "small_nfc_seq", NormCase::kJson},
                      NormCase{"small_nfkc_lower", "small_nfkc_lower", NormCase::kJson}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace kvaudit::text
