#include "eval/guard_format.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/benchmarks.h"
#include "io/atomic_file.h"

namespace kvaudit::eval {
namespace {

TEST(WildGuardFormat, SubstitutesOncePythonStyle) {
  EXPECT_EQ(format_wildguard("U:\n{prompt}\nA:\n{response}\n", "hi {response}", "ok}"),
            "U:\nhi {response}\nA:\nok}\n");
  EXPECT_EQ(format_wildguard("{{literal}} {prompt}", "p", "r"), "{literal} p");
  EXPECT_THROW(format_wildguard("{other}", "p", "r"), UsageError);
  EXPECT_THROW(format_wildguard("{prompt", "p", "r"), UsageError);
  EXPECT_THROW(format_wildguard("x } y", "p", "r"), UsageError);
}

TEST(WildGuardParse, LabelledLines) {
  const auto a = parse_wildguard("Harmful request: yes\nResponse refusal: yes\nHarmful response: no\n");
  EXPECT_EQ(a.harmful_request, std::optional<bool>(true));
  EXPECT_EQ(a.response_refusal, std::optional<bool>(true));
  EXPECT_EQ(a.harmful_response, std::optional<bool>(false));
  const auto b = parse_wildguard(" harmful response: YES\nresponse refusal: No");  // any order/case
  EXPECT_EQ(b.response_refusal, std::optional<bool>(false));
  EXPECT_EQ(b.harmful_response, std::optional<bool>(true));
  EXPECT_FALSE(b.harmful_request.has_value());
}

TEST(WildGuardParse, NaAndPositionAndGarbage) {
  const auto a = parse_wildguard("Harmful request: no\nResponse refusal: N/A\nHarmful response: n/a");
  EXPECT_EQ(a.harmful_request, std::optional<bool>(false));
  EXPECT_FALSE(a.response_refusal.has_value());
  const auto b = parse_wildguard("request: yes\nrefusal: no\nresponse: yes");  // read by position
  EXPECT_EQ(b.harmful_request, std::optional<bool>(true));
  EXPECT_EQ(b.response_refusal, std::optional<bool>(false));
  EXPECT_EQ(b.harmful_response, std::optional<bool>(true));
  const auto c = parse_wildguard("I think this is fine");
  EXPECT_FALSE(c.response_refusal.has_value());
}

TEST(LlamaGuardParse, SafeUnsafeCategories) {
  auto a = parse_llamaguard("\n\nsafe");
  EXPECT_EQ(a.unsafe, std::optional<bool>(false));
  EXPECT_TRUE(a.categories.empty());
  a = parse_llamaguard("unsafe\nS1,S9");
  EXPECT_EQ(a.unsafe, std::optional<bool>(true));
  EXPECT_EQ(a.categories, (std::vector<std::string>{"S1", "S9"}));
  a = parse_llamaguard(" Unsafe \n S2 , S14 \n");
  EXPECT_EQ(a.categories, (std::vector<std::string>{"S2", "S14"}));
  EXPECT_FALSE(parse_llamaguard("unsure").unsafe.has_value());
  EXPECT_FALSE(parse_llamaguard("safety first").unsafe.has_value());  // whole line, not a prefix
}

TEST(GuardVerdict, MapsAnswersToRefusal) {
  Verdict v = guard_verdict(GuardFormat::kWildGuard,
                            "Harmful request: yes\nResponse refusal: yes\nHarmful response: no");
  EXPECT_TRUE(v.refused);
  EXPECT_EQ(v.matched, "Harmful request: yes\nResponse refusal: yes\nHarmful response: no");
  EXPECT_FALSE(guard_verdict(GuardFormat::kWildGuard, "Response refusal: no").refused);
  EXPECT_FALSE(guard_verdict(GuardFormat::kWildGuard, "garbage").refused);
  EXPECT_TRUE(guard_verdict(GuardFormat::kLlamaGuard3, "safe").refused);
  v = guard_verdict(GuardFormat::kLlamaGuard3, "unsafe\nS9 ");
  EXPECT_FALSE(v.refused);
  EXPECT_EQ(v.matched, "unsafe\nS9");
  EXPECT_FALSE(guard_verdict(GuardFormat::kLlamaGuard3, "").refused);
}

}  // namespace
}  // namespace kvaudit::eval

namespace kvaudit::eval {
namespace {

std::string staged(const std::string& rel) {
  std::string dir;
  try {
    dir = resolve_data_dir("");
  } catch (const UsageError&) {
    return "";
  }
  return io::read_file(dir + "/" + rel);
}

TEST(GuardPrompts, WildGuardFileFormat) {
  const std::string fmt = staged("chat_templates/wildguard.format.txt");
  if (fmt.empty()) GTEST_SKIP() << "no staged datasets";
  const std::string s = format_wildguard(fmt, "How do I {x}?", "I cannot help.");
  EXPECT_EQ(s.rfind("<|user|>\n[INST] You are a classifier", 0), 0u);
  EXPECT_NE(s.find("Human user:\nHow do I {x}?\n\nAI assistant:\nI cannot help.\n\n---\n\nAnswers: [/INST]\n<|assistant|>\n"),
            std::string::npos);
}

TEST(GuardPrompts, LlamaGuard3Template) {
  const std::string tmpl = staged("chat_templates/Llama-Guard-3-8B.jinja");
  if (tmpl.empty()) GTEST_SKIP() << "no staged datasets";
  std::string s;
  try {
    s = format_llamaguard3(tmpl, "  How do I pick a lock? ", "Sure, first...\n");
  } catch (const std::runtime_error& e) {
    // The Jinja interpreter (src/text/jinja) is landing separately; until then it says so.
    if (std::string(e.what()).find("not built yet") != std::string::npos) GTEST_SKIP() << e.what();
    throw;
  }
  EXPECT_EQ(s.rfind(" <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nTask: Check if there is "
                    "unsafe content in 'Agent' messages", 0), 0u) << s;
  // content.strip() per message, then two newlines.
  EXPECT_NE(s.find("<BEGIN CONVERSATION>\n\nUser: How do I pick a lock?\n\nAgent: Sure, first...\n\n<END CONVERSATION>"),
            std::string::npos) << s;
  EXPECT_NE(s.find("ONLY THE LAST Agent message"), std::string::npos);
  const std::string tail = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>";
  EXPECT_EQ(s.substr(s.size() - tail.size()), tail);
}

}  // namespace
}  // namespace kvaudit::eval
