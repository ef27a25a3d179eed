// GGUF tokenizer metadata -> tokenizer.json, mirroring transformers' GGUF conversion
// (transformers 5.x integrations/gguf/gguf_tokenizer_mapping.py), so ids match
// AutoTokenizer.from_pretrained(dir, gguf_file=...) (SPEC.md §2), with one exception: a "qwen2"
// pre-tokenizer also gets the model's NFC normalizer (see below).
#include <set>

#include "core/error.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

namespace kvaudit::text {
namespace {

// llama.cpp token types.
constexpr int kTokenControl = 3;
constexpr int kTokenUserDefined = 4;

constexpr const char* kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kTekkenSplit =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt4oSplit =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// tokenizer.ggml.pre -> split regex; others keep the byte-level GPT-2 regex.
const char* split_for_pre(const std::string& pre) {
  static const std::set<std::string> llama3 = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                                               "midm-2.0", "lfm2", "jina-v5-nano", "dbrx", "smaug-bpe"};
  static const std::set<std::string> qwen2 = {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"};
  static const std::set<std::string> gpt4o = {"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"};
  if (llama3.count(pre)) return kLlama3Split;
  if (qwen2.count(pre)) return kQwen2Split;
  if (gpt4o.count(pre)) return kGpt4oSplit;
  if (pre == "tekken") return kTekkenSplit;
  return nullptr;
}

bool in_byte_alphabet(const std::string& tok) {
  for (size_t i = 0; i < tok.size();) {
    const size_t n = utf8_valid_len(tok, i);
    if (n == 0 || byte_level_byte(utf8_decode(tok, i, n)) < 0) return false;
    i += n;
  }
  return true;
}

std::string respell_bytes(const std::string& tok) {
  std::string out;
  for (unsigned char c : tok) out += byte_level_chars()[c];
  return out;
}

nlohmann::json added(const std::string& content, int id, bool special) {
  return {{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},   {"normalized", false}, {"special", special}};
}

nlohmann::json template_post(const std::vector<std::pair<std::string, int>>& pre,
                             const std::vector<std::pair<std::string, int>>& post) {
  nlohmann::json single = nlohmann::json::array(), specials = nlohmann::json::object();
  auto add = [&](const std::pair<std::string, int>& s) {
    single.push_back({{"SpecialToken", {{"id", s.first}, {"type_id", 0}}}});
    specials[s.first] = {{"id", s.first}, {"ids", {s.second}}, {"tokens", {s.first}}};
  };
  for (const auto& s : pre) add(s);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  for (const auto& s : post) add(s);
  return {{"type", "TemplateProcessing"}, {"single", single}, {"special_tokens", specials}};
}

}  // namespace

nlohmann::json gguf_to_tokenizer_json(const nlohmann::json& md, TokenizerExtras& extras, const std::string& what) {
  auto get = [&](const std::string& k) -> const nlohmann::json* {
    auto it = md.find(k);
    return it == md.end() ? nullptr : &*it;
  };
  const auto* model_j = get("tokenizer.ggml.model");
  const auto* tokens_j = get("tokenizer.ggml.tokens");
  if (!model_j || !model_j->is_string() || !tokens_j || !tokens_j->is_array())
    usage_error("{}: no tokenizer.ggml.model / tokenizer.ggml.tokens metadata", what);
  // A string key, "" when absent; another type is an error naming it (not a JSON library's message).
  auto text = [&](const std::string& k) {
    const auto* v = get(k);
    if (v && !v->is_string()) usage_error("{}: metadata key '{}' must be a string", what, k);
    return v ? v->get<std::string>() : std::string();
  };
  const std::string type = model_j->get<std::string>();
  const std::string arch = text("general.architecture");
  std::vector<std::string> tokens;
  tokens.reserve(tokens_j->size());
  for (const auto& t : *tokens_j) {
    if (!t.is_string()) usage_error("{}: tokenizer.ggml.tokens holds a non-string", what);
    tokens.push_back(t.get<std::string>());
  }
  const int n = static_cast<int>(tokens.size());
  std::vector<int> types(n, 1);
  if (const auto* tt = get("tokenizer.ggml.token_type")) {
    if (!tt->is_array() || tt->size() != tokens.size())
      usage_error("{}: tokenizer.ggml.token_type must be an array of one type per token ({} tokens)", what, n);
    for (int i = 0; i < n; ++i) {
      if (!(*tt)[i].is_number_integer()) usage_error("{}: tokenizer.ggml.token_type[{}] is not an integer", what, i);
      types[i] = (*tt)[i].get<int>();
    }
  }
  auto token_id = [&](const char* key) -> int {
    const auto* v = get(key);
    if (!v || !v->is_number_integer()) return -1;
    const int id = v->get<int>();
    if (id < 0 || id >= n) usage_error("{}: {} = {} is out of the vocabulary (size {})", what, key, id, n);
    return id;
  };
  auto flag = [&](const char* key, bool dflt) {
    const auto* v = get(key);
    return v && v->is_boolean() ? v->get<bool>() : dflt;
  };
  const int bos = token_id("tokenizer.ggml.bos_token_id"), eos = token_id("tokenizer.ggml.eos_token_id");
  extras.bos_token = bos >= 0 ? tokens[bos] : "";
  extras.eos_token = eos >= 0 ? tokens[eos] : "";
  for (const char* k : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (int id = token_id(k); id >= 0) extras.end_of_turn_tokens.push_back(tokens[id]);
  if (get("tokenizer.chat_template")) extras.chat_template = text("tokenizer.chat_template");

  nlohmann::json j;
  nlohmann::json vocab = nlohmann::json::object();
  nlohmann::json model;
  const bool byte_level = type == "gpt2";
  if (byte_level) {
    for (int i = 0; i < n; ++i) vocab[in_byte_alphabet(tokens[i]) ? tokens[i] : respell_bytes(tokens[i])] = i;
    model = {{"type", "BPE"}, {"byte_fallback", false}, {"fuse_unk", false}, {"ignore_merges", false}};
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
    const std::string pre = text("tokenizer.ggml.pre");
    // Qwen2/Qwen2.5/Qwen3 ship an NFC normalizer in tokenizer.json (transformers' Qwen2Tokenizer
    // sets it too); a GGUF leaves it implicit in tokenizer.ggml.pre = "qwen2". transformers 5.x's
    // GGUF conversion drops it (4.x kept it): we follow the model's own tokenizer.json.
    if (pre == "qwen2") j["normalizer"] = {{"type", "NFC"}};
    // The byte-level regex alone (set above): llama.cpp's GPT-2 pre-type, and "smollm" (SmolLM2's
    // tokenizer.json: the same ids as transformers on tests/fixtures/text's corpus).
    static const std::set<std::string> gpt2 = {"gpt-2",      "phi-2",      "roberta-bpe", "jina-es",    "jina-de",
                                               "gigachat",   "jina-v1-en", "jina-v2-es",  "jina-v2-de", "jina-v2-code",
                                               "smollm"};
    if (const char* split = split_for_pre(pre)) {
      j["pre_tokenizer"] = {{"type", "Sequence"},
                            {"pretokenizers",
                             {{{"type", "Split"}, {"pattern", {{"Regex", split}}}, {"behavior", "Isolated"}, {"invert", false}},
                              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    } else if (!gpt2.count(pre)) {
      // Another split (deepseek-coder, starcoder, command-r, ...) would be guessed as GPT-2's and
      // tokenize some texts differently from the model's own tokenizer: refused, as llama.cpp does.
      usage_error("{}: {}: a byte-level BPE vocabulary needs its split, and kvaudit knows llama-bpe, qwen2, "
                  "gpt-4o, tekken, smollm, gpt-2 and their aliases; use the model's tokenizer.json (a safetensors "
                  "directory)",
                  what, pre.empty() ? std::string("tokenizer.ggml.pre is missing")
                                    : "tokenizer.ggml.pre '" + pre + "' is not a pre-tokenizer kvaudit knows");
    }
    j["decoder"] = {{"type", "ByteLevel"}};
  } else if (type == "llama") {
    if (arch == "gemma" || arch == "gemma2" || arch == "gemma3" || arch == "phi3")
      usage_error("{}: GGUF sentencepiece tokenizer of architecture '{}' is not supported", what, arch);
    for (int i = 0; i < n; ++i) vocab[tokens[i]] = i;
    model = {{"type", "BPE"}, {"byte_fallback", true}, {"fuse_unk", true}, {"ignore_merges", false}};
    j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", false}};
    j["decoder"] = {{"type", "Sequence"},
                    {"decoders",
                     {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}},
                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  } else {
    usage_error("{}: GGUF tokenizer.ggml.model '{}' is not supported (gpt2, llama)", what, type);
  }
  const auto* merges = get("tokenizer.ggml.merges");
  if (!merges || !merges->is_array())
    usage_error("{}: no tokenizer.ggml.merges (merges derived from scores are not supported)", what);
  model["vocab"] = std::move(vocab);
  model["merges"] = *merges;
  j["model"] = std::move(model);

  nlohmann::json add = nlohmann::json::array();
  for (int i = 0; i < n; ++i) {
    if (types[i] == kTokenControl && (!byte_level || in_byte_alphabet(tokens[i]))) add.push_back(added(tokens[i], i, true));
    else if (types[i] == kTokenUserDefined) add.push_back(added(tokens[i], i, false));
  }
  j["added_tokens"] = std::move(add);
  // transformers defaults add_bos_token to true for sentencepiece files without the flag.
  const bool add_bos = flag("tokenizer.ggml.add_bos_token", type == "llama");
  const bool add_eos = flag("tokenizer.ggml.add_eos_token", false);
  std::vector<std::pair<std::string, int>> pre, post;
  if (add_bos && bos >= 0) pre.emplace_back(tokens[bos], bos);
  if (add_eos && eos >= 0) post.emplace_back(tokens[eos], eos);
  j["post_processor"] = template_post(pre, post);
  return j;
}

}  // namespace kvaudit::text
