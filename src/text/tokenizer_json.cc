// tokenizer.json -> TokenizerImpl.
#include <algorithm>

#include "core/error.h"
#include "text/tokenizer_impl.h"

namespace kvaudit::text {
namespace {

// Ids index a dense table; real vocabularies stay far below this (Gemma: 256k).
constexpr int kMaxTokenId = 1 << 24;

// A token id as the file gives it: an integer in [0, kMaxTokenId]. (nlohmann's get<int>() of a
// float such as 1e300 is an undefined conversion; of a large integer, a silent wrap.)
int token_id(const nlohmann::json& v, const std::string& what) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxTokenId)
    usage_error("{}: token id {} is not an integer in 0..{}", what, v.dump(), kMaxTokenId);
  return int(v.get<int64_t>());
}

std::vector<std::pair<std::string, std::string>> parse_merges(const nlohmann::json& m, const std::string& what) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(m.size());
  for (const auto& e : m) {
    if (e.is_string()) {  // "a b"
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) usage_error("{}: merge '{}' has no space", what, s);
      out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2) {  // ["a", "b"]
      out.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      usage_error("{}: merge entry {} is neither \"a b\" nor [a, b]", what, e.dump());
    }
  }
  return out;
}

// Ids the post-processor puts around a single sequence (SPEC.md §7: --add-special).
void parse_post_processor(const nlohmann::json& p, TokenizerImpl& t) {
  if (p.is_null()) return;
  const std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (const auto& s : p.at("processors")) parse_post_processor(s, t);
  } else if (type == "TemplateProcessing") {
    bool seen_a = false;
    for (const auto& item : p.at("single")) {
      if (item.contains("Sequence")) {
        seen_a = true;
        continue;
      }
      const std::string name = item.at("SpecialToken").at("id").get<std::string>();
      const auto& sp = p.at("special_tokens");
      if (!sp.contains(name)) usage_error("{}: post_processor names unknown special token '{}'", t.what, name);
      for (const auto& id : sp.at(name).at("ids")) (seen_a ? t.suffix_ids : t.prefix_ids).push_back(token_id(id, t.what));
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    t.prefix_ids.push_back(token_id(p.at("cls").at(1), t.what));
    t.suffix_ids.push_back(token_id(p.at("sep").at(1), t.what));
  } else if (type != "ByteLevel") {
    usage_error("{}: unsupported post_processor type '{}'", t.what, type);
  }
}

}  // namespace

std::unique_ptr<TokenizerImpl> build_tokenizer_impl(const nlohmann::json& j, TokenizerExtras extras,
                                                    const std::string& what) {
  auto t = std::make_unique<TokenizerImpl>();
  t->what = what;
  t->extras = std::move(extras);
  try {
    const auto& m = j.at("model");
    const std::string type = m.value("type", "BPE");
    if (type != "BPE") usage_error("{}: unsupported tokenizer model type '{}' (only BPE)", what, type);
    if (!m.value("continuing_subword_prefix", nlohmann::json()).is_null() &&
        !m.at("continuing_subword_prefix").get<std::string>().empty())
      usage_error("{}: BPE continuing_subword_prefix is not supported", what);
    if (!m.value("end_of_word_suffix", nlohmann::json()).is_null() &&
        !m.at("end_of_word_suffix").get<std::string>().empty())
      usage_error("{}: BPE end_of_word_suffix is not supported", what);
    if (!m.value("dropout", nlohmann::json()).is_null())
      usage_error("{}: BPE dropout is not supported (tokenization would be random)", what);
    std::unordered_map<std::string, int> vocab;
    vocab.reserve(m.at("vocab").size());
    for (const auto& [tok, id] : m.at("vocab").items()) vocab.emplace(tok, token_id(id, what));
    BpeConfig cfg;
    cfg.byte_fallback = m.value("byte_fallback", false);
    cfg.ignore_merges = m.value("ignore_merges", false);
    cfg.fuse_unk = m.value("fuse_unk", false);
    const auto unk = m.value("unk_token", nlohmann::json());
    if (!unk.is_null()) {
      auto it = vocab.find(unk.get<std::string>());
      if (it == vocab.end()) usage_error("{}: unk_token '{}' is not in the vocabulary", what, unk.get<std::string>());
      cfg.unk_id = it->second;
    }
    int max_id = -1;
    for (const auto& [tok, id] : vocab) {
      if (id < 0 || id > kMaxTokenId) usage_error("{}: token id {} for '{}' is out of range", what, id, tok);
      max_id = std::max(max_id, id);
    }
    t->id_to_token.resize(max_id + 1);
    for (const auto& [tok, id] : vocab) {
      if (id < 0) usage_error("{}: negative token id {} for '{}'", what, id, tok);
      t->id_to_token[id] = tok;
    }
    t->model = std::make_unique<BpeModel>(std::move(vocab), parse_merges(m.at("merges"), what), cfg, what);

    std::vector<AddedToken> raw, normalized;
    for (const auto& a : j.value("added_tokens", nlohmann::json::array())) {
      AddedToken tok{a.at("content").get<std::string>(), token_id(a.at("id"), what), a.value("special", false),
                     a.value("normalized", false), a.value("lstrip", false), a.value("rstrip", false),
                     a.value("single_word", false)};
      if (tok.id < 0 || tok.id > kMaxTokenId) usage_error("{}: added token id {} out of range", what, tok.id);
      if (tok.id >= static_cast<int>(t->id_to_token.size())) t->id_to_token.resize(tok.id + 1);
      t->id_to_token[tok.id] = tok.content;
      t->added_by_id[tok.id] = tok.content;
      if (tok.special) t->special_ids.insert(tok.id);
      (tok.normalized ? normalized : raw).push_back(std::move(tok));
    }
    t->normalizer = build_normalizer(j.value("normalizer", nlohmann::json()), what);
    // HF matches a normalized added token by its normalized content (e.g. "<mask>" as "▁<mask>"
    // under Llama-2's Prepend+Replace normalizer), and decodes it as that normalized string too.
    if (t->normalizer)
      for (AddedToken& tok : normalized) {
        t->normalizer->apply(tok.content);
        t->id_to_token[tok.id] = tok.content;
      }
    t->raw_added = AddedTokenMatcher(std::move(raw));
    t->normalized_added = AddedTokenMatcher(std::move(normalized));
    t->pre_tokenizer = build_pre_tokenizer(j.value("pre_tokenizer", nlohmann::json()), what);
    t->decoder = build_decoder(j.value("decoder", nlohmann::json()), what);
    parse_post_processor(j.value("post_processor", nlohmann::json()), *t);
    for (const auto* ids : {&t->prefix_ids, &t->suffix_ids})
      for (int id : *ids)
        if (id < 0 || id >= static_cast<int>(t->id_to_token.size()))
          usage_error("{}: post_processor adds token id {}, outside the vocabulary of {} ids", what, id,
                      t->id_to_token.size());
  } catch (const nlohmann::json::exception& e) {
    usage_error("{}: malformed tokenizer: {}", what, e.what());
  }
  return t;
}

}  // namespace kvaudit::text
