// `kvaudit tokenize` / `kvaudit template` end to end (SPEC.md §7): output, exit codes, messages.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "fixture_reader.h"

namespace {

struct CmdResult {
  int rc;
  std::string out;
};

CmdResult run(const std::string& args) {
  const std::string cmd = std::string(KVAUDIT_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

class CliText : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("kvaudit_text_cli_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_ / "model");
    std::filesystem::copy_file(kvaudit::text::testing::fixture_path("bytelevel/tokenizer.json"),
                               dir_ / "model/tokenizer.json", std::filesystem::copy_options::overwrite_existing);
    write("model/tokenizer_config.json",
          R"({"chat_template": "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}", "eos_token": "<|im_end|>"})");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& rel, const std::string& s) { std::ofstream(dir_ / rel, std::ios::binary) << s; }
  std::string p(const std::string& rel) const { return (dir_ / rel).string(); }
  std::filesystem::path dir_;
};

TEST_F(CliText, TokenizeTextAndFileAgree) {
  write("in.txt", "Hello world\n");
  const CmdResult a = run("tokenize --model " + p("model") + " --file " + p("in.txt"));
  EXPECT_EQ(a.rc, 0);
  EXPECT_EQ(a.out, "{\"ids\":[44,504,83,271,991,203]}\n");  // a file's bytes exactly: the newline (203) is kept
  EXPECT_EQ(run("tokenize --model " + p("model") + " --text 'Hello world' --add-special").out,
            "{\"ids\":[0,44,504,83,271,991]}\n");
}

TEST_F(CliText, TokenizeJsonlOneLinePerInput) {
  write("in.jsonl", "\"a\"\n\"Hello world\"\n");
  const CmdResult r = run("tokenize --model " + p("model") + " --jsonl " + p("in.jsonl"));
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "{\"ids\":[69]}\n{\"ids\":[44,504,83,271,991]}\n");
}

TEST_F(CliText, TemplateByteExact) {
  write("m.json", R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(run("template --model " + p("model") + " --messages " + p("m.json")).out,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(run("template --model " + p("model") + " --messages " + p("m.json") + " --no-generation-prompt").out,
            "<|im_start|>user\nhi<|im_end|>\n");
}

TEST_F(CliText, RaiseExceptionExitsTwoWithMessage) {
  write("m.json", R"([{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}])");
  const CmdResult r = run("template --model " + p("model") + " --messages " + p("m.json"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.out, "kvaudit: error: System role not supported\n");
}

TEST_F(CliText, BadInputsExitTwo) {
  EXPECT_EQ(run("tokenize --model " + p("nope") + " --text x").rc, 2);
  EXPECT_EQ(run("tokenize --model " + p("model")).rc, 2);  // no input
  write("bad.json", "{");
  EXPECT_EQ(run("template --model " + p("model") + " --messages " + p("bad.json")).rc, 2);
}

}  // namespace
