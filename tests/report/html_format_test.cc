#include "report/html_format.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace kvaudit::report {
namespace {

using nlohmann::json;

TEST(EscapeHtml, MakesScriptAndAttributeInjectionInert) {
  EXPECT_EQ(escape_html("</script><img src=x onerror=\"alert(1)\">"),
            "&lt;/script&gt;&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
  EXPECT_EQ(escape_html("a & 'b'"), "a &amp; &#39;b&#39;");
  EXPECT_EQ(escape_html("plain text"), "plain text");
}

TEST(EscapeHtml, ReplacesInvalidUtf8AndKeepsValid) {
  EXPECT_EQ(escape_html("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(escape_html("a\xff" "b"), "a\xef\xbf\xbd" "b");
}

TEST(EscapeHtml, BreakableAddsWordBreaksAfterSeparators) {
  EXPECT_EQ(escape_html_breakable("int3;layers[0,3]=fp16"), "int3;<wbr>layers[0,<wbr>3]=<wbr>fp16");
  // The ';' of an entity is followed by a break opportunity, never split.
  EXPECT_EQ(escape_html_breakable("<a>"), "&lt;<wbr>a&gt;<wbr>");
}

TEST(JsonForScript, NeverContainsCloseTagOrCommentOpen) {
  const json j = {{"finding", "</script><!-- <img onerror=alert(1)> & more"}};
  const std::string s = json_for_script(j);
  EXPECT_EQ(s.find("</"), std::string::npos);
  EXPECT_EQ(s.find("<!--"), std::string::npos);
  EXPECT_EQ(s.find('<'), std::string::npos);
  EXPECT_EQ(s.find('&'), std::string::npos);
  // The escapes decode to the same text.
  EXPECT_EQ(json::parse(s), j);
  EXPECT_EQ(s, "{\"finding\":\"\\u003c/script\\u003e\\u003c!-- \\u003cimg onerror=alert(1)\\u003e "
               "\\u0026 more\"}");
}

TEST(JsonForScript, InvalidUtf8BecomesReplacementCharacter) {
  const json j = {{"p", std::string("x\xff")}};
  EXPECT_EQ(json_for_script(j), "{\"p\":\"x\xef\xbf\xbd\"}");
}

TEST(FormatPercent, OneDecimalAndUndefinedForNull) {
  EXPECT_EQ(format_percent(0.1234), "12.3%");
  EXPECT_EQ(format_percent(0.0), "0.0%");
  EXPECT_EQ(format_percent(1.0), "100.0%");
  EXPECT_EQ(format_percent(-0.05), "-5.0%");
  EXPECT_EQ(format_percent(0.99951), "100.0%");
  EXPECT_EQ(format_percent(std::nullopt), "undefined");
  EXPECT_EQ(format_percent(std::numeric_limits<double>::quiet_NaN()), "undefined");
  EXPECT_EQ(format_percent(std::numeric_limits<double>::infinity()), "undefined");
}

TEST(FormatPercent, WithInterval) {
  EXPECT_EQ(format_percent_ci(0.5291, 0.4547, 0.6022), "52.9% (95% CI 45.5\u201360.2%)");
  EXPECT_EQ(format_percent_ci(0.5, std::nullopt, 0.6), "50.0% (95% CI undefined\u201360.0%)");
  EXPECT_EQ(format_percent_ci(std::nullopt, std::nullopt, std::nullopt), "undefined");
  EXPECT_EQ(format_percent_ci(0.25, std::nullopt, std::nullopt), "25.0%");
}

TEST(FormatNumbers, FixedGeneralCountDuration) {
  EXPECT_EQ(format_fixed(1.23456, 3), "1.235");
  EXPECT_EQ(format_fixed(std::nullopt, 2), "undefined");
  EXPECT_EQ(format_general(1.2e-19), "1.20e-19");
  EXPECT_EQ(format_general(0.0123), "0.0123");
  EXPECT_EQ(format_general(3.92), "3.92");
  EXPECT_EQ(format_general(148.0), "148");
  EXPECT_EQ(format_general(0.0), "0.0");
  EXPECT_EQ(format_general(std::nullopt), "undefined");
  EXPECT_EQ(format_count(12975.0), "12,975");
  EXPECT_EQ(format_count(1234567.4), "1,234,567");
  EXPECT_EQ(format_count(999.0), "999");
  EXPECT_EQ(format_count(-4321.0), "-4,321");
  EXPECT_EQ(format_count(std::nullopt), "undefined");
  EXPECT_EQ(format_yes_no(true), "yes");
  EXPECT_EQ(format_yes_no(false), "no");
  EXPECT_EQ(format_yes_no(std::nullopt), "undefined");
  EXPECT_EQ(format_duration(4.23), "4.2 s");
  EXPECT_EQ(format_duration(185.0), "3 min 05 s");
  EXPECT_EQ(format_duration(3725.0), "1 h 02 min");
}

TEST(JsonFields, NullMissingAndWrongTypesAreAbsent) {
  const json j = json::parse(R"({"a": 0.5, "b": null, "c": "x", "d": true, "e": [], "f": [1],
                                 "g": {}, "h": {"k": 1}, "i": 0})");
  EXPECT_EQ(opt_number(j, "a"), 0.5);
  EXPECT_EQ(opt_number(j, "i"), 0.0);  // a real 0 stays 0
  EXPECT_FALSE(opt_number(j, "b"));
  EXPECT_FALSE(opt_number(j, "missing"));
  EXPECT_FALSE(opt_number(j, "c"));
  EXPECT_FALSE(opt_number(json(nullptr), "a"));
  EXPECT_FALSE(opt_number(json::array(), "a"));
  EXPECT_EQ(opt_string(j, "c"), "x");
  EXPECT_FALSE(opt_string(j, "a"));
  EXPECT_EQ(opt_bool(j, "d"), true);
  EXPECT_FALSE(opt_bool(j, "b"));
  EXPECT_EQ(opt_array(j, "e"), nullptr);
  ASSERT_NE(opt_array(j, "f"), nullptr);
  EXPECT_EQ(opt_array(j, "f")->size(), 1u);
  EXPECT_EQ(opt_object(j, "g"), nullptr);
  ASSERT_NE(opt_object(j, "h"), nullptr);
}

}  // namespace
}  // namespace kvaudit::report
