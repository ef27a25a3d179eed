// Chat templates rendered byte-identical to transformers' apply_chat_template (SPEC.md §2), error
// cases (raise_exception, unsupported constructs) and interpreter semantics.
#include "text/chat_template.h"

#include <gtest/gtest.h>

#include <ctime>
#include <set>

#include "fixture_reader.h"

namespace kvaudit::text {
namespace {

using testing::fixture_path;
using testing::read_file;

// The fixture's strftime_now clock, a local time, as a Unix time on this machine.
int64_t fixture_now(const std::string& local) {
  std::tm tm{};
  strptime(local.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  tm.tm_isdst = -1;
  return static_cast<int64_t>(std::mktime(&tm));
}

TEST(ChatTemplate, EveryFixtureCaseMatchesTransformers) {
  const auto fx = nlohmann::json::parse(read_file(fixture_path("templates/cases.json")));
  const int64_t now = fixture_now(fx.at("now_unix_local").get<std::string>());
  int renders = 0, errors = 0, failures = 0;
  std::set<std::string> templates;
  for (const auto& c : fx.at("cases")) {
    const std::string name = c.at("template").get<std::string>();
    templates.insert(name);
    const std::string tmpl = read_file(fixture_path("templates/" + name));
    std::vector<ChatMessage> msgs;
    for (const auto& m : c.at("messages")) msgs.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
    const nlohmann::json ctx = chat_context(msgs, c.at("add_generation_prompt").get<bool>(),
                                            c.at("bos_token").get<std::string>(), c.at("eos_token").get<std::string>());
    const std::string label = name + " / " + c.at("conversation").get<std::string>();
    if (c.contains("error")) {
      ++errors;
      try {
        render_chat_template(tmpl, ctx, now);
        ADD_FAILURE() << label << ": expected raise_exception(" << c.at("error") << ")";
        ++failures;
      } catch (const TemplateRaised& e) {
        EXPECT_EQ(std::string(e.what()), c.at("error").get<std::string>()) << label;
      }
      continue;
    }
    ++renders;
    std::string got;
    try {
      got = render_chat_template(tmpl, ctx, now);
    } catch (const std::exception& e) {
      ADD_FAILURE() << label << ": threw " << e.what();
      ++failures;
      continue;
    }
    const std::string want = c.at("expected").get<std::string>();
    if (got != want) {
      ++failures;
      ADD_FAILURE() << label << "\n got  " << nlohmann::json(got).dump() << "\n want " << nlohmann::json(want).dump();
    }
  }
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(templates.size(), 22u);  // every template in ../shared/datasets/chat_templates
  EXPECT_GE(renders + errors, 6 * 22);
}

std::string r(const std::string& tmpl, const nlohmann::json& ctx = nlohmann::json::object()) {
  return render_chat_template(tmpl, ctx);
}

TEST(Jinja, WhitespaceControlAsTransformers) {
  // trim_blocks + lstrip_blocks, and '-' markers.
  EXPECT_EQ(r("  {% if true %}\n  x\n  {% endif %}\n y {{- ' z ' -}} \n w"), "  x\n y z w");
  EXPECT_EQ(r("a {#- c -#} b"), "ab");
  EXPECT_EQ(r("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
}

TEST(Jinja, ScopingNamespaceAndLoops) {
  EXPECT_EQ(r("{% for i in [1,2] %}{% if i == 2 %}[{{ x }}]{% endif %}{% set x = i %}{% endfor %}{{x}}", {{"x", 9}}),
            "[9]9");
  EXPECT_EQ(r("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"), "6");
  EXPECT_EQ(r("{% for x in 'abc' if x != 'b' %}{{ loop.index }}{{ x }}{{ '|' if not loop.last }}{% endfor %}"), "1a|2c");
  EXPECT_EQ(r("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {{"d", {{"a", 1}, {"b", true}}}}), "a=1;b=True;");
  EXPECT_EQ(r("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
}

TEST(Jinja, PythonValueSemantics) {
  EXPECT_EQ(r("{{ 1.0 }} {{ ['a', 1, none, true] }} {{ {'a': 1} }} {{ '%s-%d' % ('a', 3) }} {{ 3/2 }} {{ 7//2 }} {{ 'ab'[::-1] }}"),
            "1.0 ['a', 1, None, True] {'a': 1} a-3 1.5 3 ba");
  EXPECT_EQ(r("{{ x | tojson }}", {{"x", {{"k", "é\n\"q\""}, {"l", {1, 2.5, nullptr}}}}}),
            "{\"k\": \"é\\n\\\"q\\\"\", \"l\": [1, 2.5, null]}");
  EXPECT_EQ(r("{{ '  a b  '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ 'hello world'.title() }}|{{ 'x'.startswith('x') }}"),
            "a b|['a', 'b', '', 'c']|Hello World|True");
  EXPECT_EQ(r("{{ 'héllo' | length }} {{ 'héllo'[1:3] }} {{ [1,2,3][-1] }}"), "5 él 3");
}

TEST(Jinja, RaiseExceptionCarriesMessage) {
  try {
    r("{{ raise_exception('System role not supported') }}");
    FAIL() << "no exception";
  } catch (const TemplateRaised& e) {
    EXPECT_STREQ(e.what(), "System role not supported");
  }
}

TEST(Jinja, UnsupportedConstructNamesLine) {
  try {
    r("ok\n{% filter upper %}x{% endfilter %}");
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "chat template line 2: unsupported statement '{% filter %}'");
  }
  try {
    r("a\nb\n{{ x | frobnicate }}");
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "chat template line 3: unsupported filter 'frobnicate'");
  }
  EXPECT_THROW(r("{% if x %}"), UsageError);
  EXPECT_THROW(r("{{ x.y }}"), UsageError);  // attribute of undefined
}

// Found by fuzz/text_template_fuzz.cc: a \u escape with non-hex digits threw std::invalid_argument
// (exit 1, and a crash under the fuzzer) instead of a UsageError naming the line.
TEST(Jinja, FuzzRegressionBadUnicodeEscape) {
  try {
    r("{{ bos_token }}\n{{ messages[0]['rol\\u\n'] }}");
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "chat template line 2: bad \\u escape in string literal");
  }
  EXPECT_EQ(r("{{ '\\u00e9\\x41' }}"), "éA");
}

}  // namespace
}  // namespace kvaudit::text
