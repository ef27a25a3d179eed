#include "text/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/gguf.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

namespace kvaudit::text {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) usage_error("cannot open '{}'", path);
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    usage_error("'{}' is not valid JSON: {}", path, e.what());
  }
}

// tokenizer_config.json token fields are a string or an AddedToken dict {"content": ...}.
std::string token_string(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string()) return v.at("content").get<std::string>();
  return "";
}

// Strings that end a turn in the supported chat formats; used as extra stop tokens when present.
constexpr const char* kEndOfTurnTokens[] = {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                            "<|endoftext|>", "<|end_of_text|>"};

}  // namespace

void TokenizerImpl::encode_text(std::string_view input, std::vector<int>& out) const {
  const std::string text = utf8_sanitize(input);
  for (const AddedSplit& raw : raw_added.split(text)) {
    if (raw.id >= 0) {
      out.push_back(raw.id);
      continue;
    }
    std::string piece = text.substr(raw.begin, raw.end - raw.begin);
    if (normalizer) normalizer->apply(piece);
    for (const AddedSplit& norm : normalized_added.split(piece)) {
      if (norm.id >= 0) {
        out.push_back(norm.id);
        continue;
      }
      std::vector<Piece> words{{piece.substr(norm.begin, norm.end - norm.begin), raw.begin == 0 && norm.begin == 0}};
      if (pre_tokenizer) pre_tokenizer->apply(words);
      for (const Piece& w : words) model->tokenize(w.text, out);
    }
  }
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_hf_json(const std::string& tokenizer_json_path, const std::string& tokenizer_config_path) {
  TokenizerExtras extras;
  if (!tokenizer_config_path.empty()) {
    const nlohmann::json cfg = read_json(tokenizer_config_path);
    if (cfg.contains("chat_template")) {
      const auto& ct = cfg.at("chat_template");
      if (ct.is_string()) {
        extras.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {  // [{"name": "default", "template": ...}, ...]
        for (const auto& e : ct)
          if (e.value("name", "") == "default") extras.chat_template = e.value("template", "");
      }
    }
    if (cfg.contains("bos_token")) extras.bos_token = token_string(cfg.at("bos_token"));
    if (cfg.contains("eos_token")) extras.eos_token = token_string(cfg.at("eos_token"));
  }
  // A chat_template.jinja next to tokenizer.json (transformers >= 4.43 saves it there) wins.
  const auto jinja = std::filesystem::path(tokenizer_json_path).parent_path() / "chat_template.jinja";
  if (std::filesystem::exists(jinja)) {
    std::ifstream f(jinja, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    extras.chat_template = ss.str();
  }
  return Tokenizer(build_tokenizer_impl(read_json(tokenizer_json_path), std::move(extras), tokenizer_json_path));
}

Tokenizer Tokenizer::from_gguf_metadata(const nlohmann::json& md, const std::string& what) {
  TokenizerExtras extras;
  nlohmann::json j;
  try {
    j = gguf_to_tokenizer_json(md, extras, what);
  } catch (const nlohmann::json::exception& e) {
    usage_error("{}: malformed tokenizer metadata: {}", what, e.what());
  }
  return Tokenizer(build_tokenizer_impl(j, std::move(extras), what));
}

Tokenizer Tokenizer::load_for_model(const std::string& model_path) {
  namespace fs = std::filesystem;
  const fs::path p(model_path);
  if (fs::is_directory(p)) {
    const fs::path tj = p / "tokenizer.json", tc = p / "tokenizer_config.json";
    if (!fs::exists(tj)) usage_error("--model {}: no tokenizer.json in the directory", model_path);
    return from_hf_json(tj.string(), fs::exists(tc) ? tc.string() : "");
  }
  if (!fs::exists(p)) usage_error("--model {}: no such file or directory", model_path);
  if (p.extension() == ".gguf") return from_gguf_metadata(io::GgufFile::open(model_path)->metadata(), model_path);
  if (p.filename() == "tokenizer.json") {
    const fs::path tc = p.parent_path() / "tokenizer_config.json";
    return from_hf_json(p.string(), fs::exists(tc) ? tc.string() : "");
  }
  usage_error("--model {}: expected a directory with tokenizer.json or a .gguf file", model_path);
}

std::vector<int> Tokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int> out;
  if (add_special) out = impl_->prefix_ids;
  impl_->encode_text(text, out);
  if (add_special) out.insert(out.end(), impl_->suffix_ids.begin(), impl_->suffix_ids.end());
  return out;
}

std::string Tokenizer::decode(std::span<const int> ids, bool skip_special) const {
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (int id : ids) {
    if (id < 0 || id >= vocab_size()) usage_error("token id {} is out of the vocabulary (size {})", id, vocab_size());
    if (skip_special && impl_->special_ids.count(id)) continue;
    toks.push_back(impl_->id_to_token[id]);
  }
  if (!impl_->decoder) {
    std::string out;
    for (size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
    return out;
  }
  impl_->decoder->apply(toks);
  std::string out;
  for (const auto& t : toks) out += t;
  return out;
}

int Tokenizer::bos_id() const { return impl_->extras.bos_token.empty() ? -1 : token_to_id(impl_->extras.bos_token).value_or(-1); }
int Tokenizer::eos_id() const { return impl_->extras.eos_token.empty() ? -1 : token_to_id(impl_->extras.eos_token).value_or(-1); }

std::vector<int> Tokenizer::eos_ids() const {
  std::vector<int> ids;
  auto add = [&](std::optional<int> id) {
    if (id && std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
  };
  if (eos_id() >= 0) add(eos_id());
  for (const auto& t : impl_->extras.end_of_turn_tokens) add(token_to_id(t));
  for (const char* t : kEndOfTurnTokens) {
    auto id = token_to_id(t);
    if (id && impl_->special_ids.count(*id)) add(id);
  }
  return ids;
}

std::optional<std::string> Tokenizer::chat_template() const { return impl_->extras.chat_template; }
std::string Tokenizer::bos_token() const { return impl_->extras.bos_token; }
std::string Tokenizer::eos_token() const { return impl_->extras.eos_token; }
int Tokenizer::vocab_size() const { return static_cast<int>(impl_->id_to_token.size()); }

std::optional<int> Tokenizer::token_to_id(std::string_view token) const {
  for (const auto& [id, content] : impl_->added_by_id)
    if (content == token) return id;
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int id) const {
  return id >= 0 && id < vocab_size() ? impl_->id_to_token[id] : std::string();
}

bool Tokenizer::is_special(int id) const { return impl_->special_ids.count(id) > 0; }

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special) : tok_(tok), skip_special_(skip_special) {}

// As HF's DecodeStream: decode a window that starts a little before the new ids, so decoders that
// treat the first token specially (Metaspace, Strip) see the same context, and emit the new text
// only once it no longer ends in U+FFFD (a character still incomplete).
std::string StreamDecoder::push(int id) {
  ids_.push_back(id);
  std::span<const int> all(ids_);
  const std::string prefix = tok_.decode(all.subspan(prefix_, read_ - prefix_), skip_special_);
  const std::string now = tok_.decode(all.subspan(prefix_), skip_special_);
  if (now.size() <= prefix.size() || now.ends_with("\xEF\xBF\xBD") || now.compare(0, prefix.size(), prefix) != 0)
    return "";
  prefix_ = read_;
  read_ = ids_.size();
  return now.substr(prefix.size());
}

std::string StreamDecoder::flush() {
  std::span<const int> all(ids_);
  const std::string prefix = tok_.decode(all.subspan(prefix_, read_ - prefix_), skip_special_);
  const std::string now = tok_.decode(all.subspan(prefix_), skip_special_);
  prefix_ = read_ = ids_.size();
  return now.size() > prefix.size() ? now.substr(prefix.size()) : "";
}

}  // namespace kvaudit::text
