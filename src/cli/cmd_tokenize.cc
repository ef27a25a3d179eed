// `kvaudit tokenize` (SPEC.md §7): ids of a text taken verbatim (a file's bytes exactly), as HF
// tokenizers gives them; --add-special as add_special_tokens=True; --chat renders the template first.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace kvaudit::cli {
namespace {

struct TokenizeArgs {
  std::string model, text, file, jsonl;
  bool add_special = false, chat = false;
  bool text_given = false;  // --text "" is a text (the empty one), not a missing option
};

std::string read_bytes(const std::string& path, const char* flag) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) usage_error("{} '{}' is a directory, not a file", flag, path);
  std::ifstream f(path, std::ios::binary);
  if (!f) usage_error("cannot open {} '{}'", flag, path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<int> ids_for(const text::Tokenizer& tok, const TokenizeArgs& a, const std::string& s) {
  if (!a.chat) return tok.encode(s, a.add_special);
  const auto tmpl = tok.chat_template();
  if (!tmpl) usage_error("--chat: model '{}' has no chat template", a.model);
  const std::string rendered =
      text::render_chat_template(*tmpl, {{"user", s}}, /*add_generation_prompt=*/true, tok.bos_token(), tok.eos_token());
  return tok.encode(rendered, a.add_special);
}

void print_ids(const std::vector<int>& ids) {
  const std::string line = nlohmann::json{{"ids", ids}}.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

void run_tokenize(const TokenizeArgs& a) {
  const int sources = int(a.text_given) + !a.file.empty() + !a.jsonl.empty();
  if (sources != 1) usage_error("tokenize needs exactly one of --text, --file, --jsonl");
  const text::Tokenizer tok = text::Tokenizer::load_for_model(a.model);
  if (!a.jsonl.empty()) {
    // Every line is read and checked before any output: a bad line never leaves half an answer.
    // Blank lines at the end are ignored; one in the middle is an error (output line i answers
    // input line i).
    std::istringstream in(read_bytes(a.jsonl, "--jsonl"));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
    }
    while (!lines.empty() && lines.back().find_first_not_of(" \t") == std::string::npos) lines.pop_back();
    std::vector<std::string> texts;
    for (size_t n = 1; n <= lines.size(); ++n) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(lines[n - 1]);
      } catch (const nlohmann::json::exception& e) {
        usage_error("--jsonl {} line {}: not JSON: {}", a.jsonl, n, e.what());
      }
      if (!j.is_string()) usage_error("--jsonl {} line {}: expected a JSON string", a.jsonl, n);
      texts.push_back(j.get<std::string>());
    }
    for (const std::string& t : texts) print_ids(ids_for(tok, a, t));
    return;
  }
  const std::string text = a.file.empty() ? a.text : read_bytes(a.file, "--file");
  require_utf8(text, a.file.empty() ? std::string("--text") : "--file " + a.file);
  print_ids(ids_for(tok, a, text));
}

}  // namespace

void add_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize", "print {\"ids\": [...]} for a text, as Hugging Face tokenizes it");
  cmd->add_option("--model", a->model, "HF model directory (tokenizer.json) or .gguf file")->required();
  auto* text = cmd->add_option("--text", a->text, "the text, verbatim (may be empty: HF tokenizes \"\" too)");
  cmd->add_option("--file", a->file, "a file whose bytes are the text");
  cmd->add_option("--jsonl", a->jsonl, "one JSON string per line; one output line each");
  cmd->add_flag("--add-special", a->add_special, "add BOS/EOS as HF add_special_tokens=True");
  cmd->add_flag("--chat", a->chat, "render the chat template around the text (one user turn) first");
  cmd->callback([a, text] {
    a->text_given = text->count() > 0;
    run_tokenize(*a);
  });
}

}  // namespace kvaudit::cli
