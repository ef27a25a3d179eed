// The scorer against the reference (google-research instruction_following_eval as lm-eval ships
// it): tests/fixtures/ifeval/agreement.jsonl.gz holds responses (real generations of the demo
// models and constructed edge cases) with the reference's strict and loose verdicts and
// langdetect's answer (tools/make_ifeval_fixture.py). Required: >= 99% identical verdicts
// overall; every disagreement is printed (and listed in docs/IFEVAL.md).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>

#include "eval/ifeval/scorer.h"
#include "eval/ifeval/text_rules.h"

namespace kvaudit::eval::ifeval {
namespace {

constexpr double kMinAgreement = 0.99;  // issue 11, "Must show" 1

// letter_frequency with a letter that is not one ASCII letter (keys 1122 '#', 1129 '!'): the
// reference draws a random letter, so its verdict is a coin flip, not a definition to agree with.
bool reference_is_random(const std::string& id, const nlohmann::json& kwargs) {
  if (id != "keywords:letter_frequency") return false;
  const std::string l = kwargs.value("letter", "");
  return l.size() != 1 || l[0] < 'a' || l[0] > 'z';
}

std::vector<nlohmann::json> read_fixture(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(("gzip -dc '" + path + "'").c_str(), "r"), ::pclose);
  if (!p) return rows;
  std::string all;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p.get())) > 0;) all.append(buf, n);
  for (size_t b = 0; b < all.size();) {
    size_t e = all.find('\n', b);
    if (e == std::string::npos) e = all.size();
    if (e > b) rows.push_back(nlohmann::json::parse(all.substr(b, e - b)));
    b = e + 1;
  }
  return rows;
}

TEST(IfevalAgreement, MatchesTheReferenceOnTheFixture) {
  const std::string fixture = std::string(KVAUDIT_FIXTURES) + "/ifeval/agreement.jsonl.gz";
  const std::string data = std::string(KVAUDIT_SOURCE_DIR) + "/../shared/datasets/ifeval/input_data.jsonl";
  if (!std::ifstream(data)) GTEST_SKIP() << data << " missing";
  const auto items = load_items(data);
  std::map<int64_t, const Item*> by_key;
  for (const auto& it : items) by_key[it.key] = &it;
  std::map<int64_t, nlohmann::json> kwargs;  // key -> kwargs list
  {
    std::ifstream f(data);
    for (std::string line; std::getline(f, line);) {
      const auto j = nlohmann::json::parse(line);
      kwargs[j["key"].get<int64_t>()] = j["kwargs"];
    }
  }
  const auto rows = read_fixture(fixture);
  ASSERT_GE(rows.size(), 1000u) << fixture;
  struct Tally {
    size_t n = 0, strict_same = 0, loose_same = 0;
  };
  std::map<std::string, Tally> per_id, per_source;
  size_t verdicts = 0, same = 0, prompt_same = 0, lang_n = 0, lang_same = 0, random_entries = 0;
  for (const auto& row : rows) {
    const Item& item = *by_key.at(row["key"].get<int64_t>());
    const std::string response = row["response"].get<std::string>();
    const Verdict v = score(item, response);
    const auto ref_strict = row["strict"].get<std::vector<bool>>(), ref_loose = row["loose"].get<std::vector<bool>>();
    ASSERT_EQ(ref_strict.size(), v.strict.size());
    const std::string source = row["source"].get<std::string>();
    const std::string kind = source.substr(0, source.rfind(':') == std::string::npos || source.rfind("recycled", 0) == 0
                                                  ? source.size()
                                                  : source.find(':'));
    for (size_t i = 0; i < v.strict.size(); ++i) {
      if (reference_is_random(item.instruction_ids[i], kwargs.at(item.key)[i])) {
        ++random_entries;
        continue;
      }
      for (Tally* t : {&per_id[item.instruction_ids[i]], &per_source[kind]}) {
        ++t->n;
        t->strict_same += v.strict[i] == ref_strict[i];
        t->loose_same += v.loose[i] == ref_loose[i];
      }
      if (v.strict[i] != ref_strict[i] || v.loose[i] != ref_loose[i])
        std::printf("DISAGREE key %lld %s [%s] strict %d/%d loose %d/%d: %s\n", static_cast<long long>(item.key),
                    item.instruction_ids[i].c_str(), row["source"].get<std::string>().c_str(), int(v.strict[i]),
                    int(ref_strict[i]), int(v.loose[i]), int(ref_loose[i]), nlohmann::json(response).dump().c_str());
    }
    bool all_s = true, all_l = true;
    for (size_t i = 0; i < ref_strict.size(); ++i) {
      all_s = all_s && ref_strict[i];
      all_l = all_l && ref_loose[i];
    }
    prompt_same += (v.all_strict == all_s) + (v.all_loose == all_l);
    const std::string lang = detect_language(response);
    ++lang_n;
    lang_same += lang == row["langdetect"].get<std::string>();
  }
  std::printf("%-48s %6s %8s %8s\n", "instruction", "n", "strict", "loose");
  for (const auto& [id, t] : per_id) {
    std::printf("%-48s %6zu %8.4f %8.4f\n", id.c_str(), t.n, double(t.strict_same) / double(t.n),
                double(t.loose_same) / double(t.n));
    verdicts += 2 * t.n;
    same += t.strict_same + t.loose_same;
  }
  for (const auto& [src, t] : per_source)
    std::printf("source %-38s %6zu %8.4f %8.4f\n", src.c_str(), t.n, double(t.strict_same) / double(t.n),
                double(t.loose_same) / double(t.n));
  std::printf("left out: %zu entries where the reference draws a random letter\n", random_entries);
  const double agreement = double(same) / double(verdicts);
  std::printf("responses %zu, instruction verdicts %zu (strict + loose), identical %.4f; prompt-level identical "
              "%.4f; CLD2 == langdetect on %zu of %zu responses (%.4f)\n",
              rows.size(), verdicts, agreement, double(prompt_same) / double(2 * rows.size()), lang_same, lang_n,
              double(lang_same) / double(lang_n));
  EXPECT_GE(agreement, kMinAgreement);
}

}  // namespace
}  // namespace kvaudit::eval::ifeval
