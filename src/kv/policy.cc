#include "kv/policy.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/json_keys.h"
#include "kv/registry.h"

namespace kvaudit::kv {
namespace {

bool part_covers(const SpecPart& p, int layer) {
  if (p.layers.empty()) return true;
  for (const auto& [lo, hi] : p.layers)
    if (layer >= lo && layer <= hi) return true;
  return false;
}

Storage parse_storage(const nlohmann::json& j) {
  const std::string s = j.get<std::string>();
  if (s == "simulated") return Storage::kSimulated;
  if (s == "packed") return Storage::kPacked;
  usage_error("KV policy: \"storage\" must be \"simulated\" or \"packed\", got \"{}\"", s);
}

// The scheme parts[0..n) give (layer, role): the last part naming it, else fp16.
std::string scheme_at(const std::vector<SpecPart>& parts, int layer, Role role) {
  const SpecPart* last = nullptr;
  for (const SpecPart& p : parts)
    if ((role == Role::K ? p.k : p.v) && part_covers(p, layer)) last = &p;
  return last ? to_string(last->scheme) : "fp16";
}

// The parts without those that change no site: a part every later one overrides, or one that sets
// what the earlier ones already give ("bf16;layers[0]=bf16" is "bf16"). Sites are compared at every
// range boundary, between which the parts are constant, so no layer count is needed.
std::vector<SpecPart> without_idle_parts(std::vector<SpecPart> parts) {
  std::vector<int> at = {0};
  for (const SpecPart& p : parts)
    for (const auto& [lo, hi] : p.layers) at.insert(at.end(), {lo, hi == std::numeric_limits<int>::max() ? hi : hi + 1});
  const auto same = [&](const std::vector<SpecPart>& a, const std::vector<SpecPart>& b) {
    for (int layer : at)
      for (Role r : {Role::K, Role::V})
        if (scheme_at(a, layer, r) != scheme_at(b, layer, r)) return false;
    return true;
  };
  for (size_t i = 0; i < parts.size();) {
    std::vector<SpecPart> fewer = parts;
    fewer.erase(fewer.begin() + std::ptrdiff_t(i));
    if (same(parts, fewer)) parts = std::move(fewer), i = 0;
    else ++i;
  }
  return parts;
}

}  // namespace

KvPolicy KvPolicy::parse(std::string_view spec, std::optional<int> n_layers) {
  KvPolicy p;
  p.parts_ = parse_spec(spec);
  if (p.parts_.size() == 1 && p.parts_[0].layers.empty() && p.parts_[0].k && p.parts_[0].v &&
      p.parts_[0].scheme.kind == SchemeKind::kFp16)
    p.parts_.clear();  // plain "fp16" is the baseline
  if (n_layers) p.validate(*n_layers);
  return p;
}

void KvPolicy::validate(int n_layers) const {
  if (declared_layers_ >= 0 && declared_layers_ != n_layers)
    usage_error("KV policy lists {} layers, but the model has {}", declared_layers_, n_layers);
  for (const auto& site : subsets_)
    if (site.layer >= n_layers)
      usage_error("KV policy: a channel subset names layer {}, but the model has {} layers (0..{})", site.layer,
                  n_layers, n_layers - 1);
  for (const auto& part : parts_)
    for (const auto& [lo, hi] : part.layers)
      if (hi >= n_layers)
        usage_error("KV spec part '{}' names layer {}, but the model has {} layers (0..{})", to_string(part), hi,
                    n_layers, n_layers - 1);
}

SchemeSpec KvPolicy::scheme(int layer, Role role) const {
  SchemeSpec s;  // fp16
  for (const auto& part : parts_)
    if ((role == Role::K ? part.k : part.v) && part_covers(part, layer)) s = part.scheme;
  return s;
}

bool KvPolicy::keys_pre_rope(int layer) const {
  if (subset(layer, Role::K)) return false;  // subsets quantize the keys the cache stores (@post)
  const SchemeSpec s = scheme(layer, Role::K);
  return !s.is_16bit() && s.pre_rope;
}

void KvPolicy::set_subset(int layer, Role role, ChannelSubset s) {
  if (layer < 0) usage_error("KV policy: channel subset layer must be >= 0, got {}", layer);
  for (auto& site : subsets_)
    if (site.layer == layer && site.role == role) {
      site.subset = std::move(s);
      return;
    }
  subsets_.push_back({layer, role, std::move(s)});
}

const ChannelSubset* KvPolicy::subset(int layer, Role role) const {
  for (const auto& site : subsets_)
    if (site.layer == layer && site.role == role) return &site.subset;
  return nullptr;
}

std::unique_ptr<LayerCache> KvPolicy::make_cache(int layer, Role role, CacheGeometry g) const {
  if (const ChannelSubset* sub = subset(layer, role)) return make_subset_cache(*sub, g);
  const SchemeSpec s = scheme(layer, role);
  if (s.kind == SchemeKind::kFp16) return make_plain_cache(g);
  CacheOptions o{storage_, compat_paper_, nullptr, layer};
  if (calibration_) o.stats = calibration_->find(layer, role, role == Role::K && s.pre_rope);
  return make_scheme_cache(s, role, g, o);
}

std::optional<KvLayout> KvPolicy::layout(int layer, Role role, CacheGeometry g) const {
  if (subset(layer, role)) return std::nullopt;
  const SchemeSpec s = scheme(layer, role);
  CacheOptions o{storage_, compat_paper_, nullptr, layer};
  if (calibration_) o.stats = calibration_->find(layer, role, role == Role::K && s.pre_rope);
  return scheme_layout(s, role, g, o);
}

std::string KvPolicy::name() const {
  const std::vector<SpecPart> parts = without_idle_parts(parts_);
  if (parts.empty() && subsets_.empty()) return "fp16";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ";") + to_string(p);
  for (const auto& site : subsets_)
    out += fmt::format("{}layers[{}].{}=subset(int{}:{},{}ch)", out.empty() ? "" : ";", site.layer,
                       site.role == Role::K ? "k" : "v", site.subset.bits, to_string(site.subset.scale),
                       site.subset.channels.size());
  return out;
}

bool KvPolicy::is_baseline() const {
  if (!subsets_.empty()) return false;
  for (const auto& p : parts_)
    if (p.scheme.kind != SchemeKind::kFp16) return false;
  return true;
}

bool KvPolicy::needs_calibration() const {
  for (const auto& p : parts_)
    if (p.scheme.needs_calibration()) return true;
  return false;
}

namespace {

void check_keys(const nlohmann::json& j, std::initializer_list<const char*> known, const std::string& where) {
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; }))
      usage_error("KV policy: unknown key \"{}\" in {}", key, where);
  }
}

ChannelSubset parse_subset_json(const nlohmann::json& j, const std::string& where) {
  check_keys(j, {"scheme", "channels", "scale"}, where);
  if (!j.contains("scheme") || !j.contains("channels"))
    usage_error("KV policy: {} needs \"scheme\" and \"channels\"", where);
  const SchemeSpec sc = parse_scheme(j.at("scheme").get<std::string>());
  if (sc.kind != SchemeKind::kInt || !sc.sym || sc.group != 0 || sc.residual != 0 || sc.pre_rope || sc.had ||
      sc.protect != ProtectUnit::kNone)
    usage_error("KV policy: {}: a channel subset takes a plain symmetric intB scheme (e.g. int3:tensor:sym), got {}",
                where, to_string(sc));
  ChannelSubset sub;
  sub.bits = sc.bits;
  const auto& channels = j.at("channels");
  if (!channels.is_array()) usage_error("KV policy: {}: \"channels\" must be a list of channel indices", where);
  for (const auto& c : channels) {  // get<int>() of a float out of int range would be undefined
    if (!c.is_number_integer() || c.get<int64_t>() < 0 || c.get<int64_t>() > std::numeric_limits<int>::max())
      usage_error("KV policy: {}: channel {} is not a non-negative integer", where, c.dump());
    sub.channels.push_back(int(c.get<int64_t>()));
  }
  sub.scale = parse_subset_scale(j.value("scale", std::string("tensor")));
  return sub;
}

}  // namespace

KvPolicy KvPolicy::from_json(const nlohmann::json& j) {
  if (!j.is_object()) usage_error("KV policy: expected a JSON object");
  check_keys(j, {"spec", "layers", "storage", "compat", "kvaudit_version", "model", "note"}, "the policy");
  KvPolicy p;
  try {
    if (j.contains("layers")) {  // the explicit form is what runs (it is what a user edits)
      const auto& layers = j.at("layers");
      if (!layers.is_array()) usage_error("KV policy: \"layers\" must be an array");
      for (size_t l = 0; l < layers.size(); ++l) {
        const std::string where = fmt::format("layers[{}]", l);
        if (!layers[l].is_object()) usage_error("KV policy: {} must be an object", where);
        check_keys(layers[l], {"k", "v"}, where);
        for (const char* role : {"k", "v"}) {
          if (!layers[l].contains(role)) usage_error("KV policy: layers[{}] has no \"{}\"", l, role);
          const auto& entry = layers[l].at(role);
          const Role r = role[0] == 'k' ? Role::K : Role::V;
          if (entry.is_object()) {
            p.set_subset(int(l), r, parse_subset_json(entry, where + "." + role));
            continue;
          }
          SpecPart part;
          part.layers = {{int(l), int(l)}};
          part.k = r == Role::K;
          part.v = !part.k;
          part.scheme = parse_scheme(entry.get<std::string>());
          p.parts_.push_back(part);
        }
      }
      p.declared_layers_ = int(layers.size());
      // A file with both forms (to_json writes both) runs its layers; a "spec" that says another
      // plan would be silently ignored, so the two must agree at every site the layers name.
      // (With channel subsets, to_json's "spec" is name()'s unparseable subset(...) spelling: no check.)
      if (j.contains("spec") && p.subsets_.empty()) {
        const KvPolicy stated = parse(j.at("spec").get<std::string>());
        for (int l = 0; l < p.declared_layers_; ++l)
          for (const Role r : {Role::K, Role::V}) {
            const std::string runs = to_string(p.scheme(l, r)), says = to_string(stated.scheme(l, r));
            if (runs != says)
              usage_error("KV policy: \"spec\" and \"layers\" disagree at layers[{}].{}: {} in \"layers\", {} by "
                          "\"spec\"; the layers are what runs: remove \"spec\" or make it agree",
                          l, r == Role::K ? "k" : "v", runs, says);
          }
      }
    } else if (j.contains("spec")) {
      p = parse(j.at("spec").get<std::string>());
    } else {
      usage_error("KV policy: expected \"spec\" or \"layers\"");
    }
    if (j.contains("model")) {
      if (!j.at("model").is_string())
        usage_error("KV policy: \"model\" must be a string (the sha256 of the weights the plan was prescribed for)");
      p.stated_model_ = j.at("model").get<std::string>();
    }
    if (j.contains("storage")) p.storage_ = parse_storage(j.at("storage"));
    if (j.contains("compat")) {
      const std::string c = j.at("compat").get<std::string>();
      if (c != "paper" && c != "none") usage_error("KV policy: \"compat\" must be \"paper\" or \"none\", got \"{}\"", c);
      p.compat_paper_ = c == "paper";
    }
  } catch (const nlohmann::json::exception& e) {
    usage_error("KV policy: {}", e.what());
  }
  return p;
}

KvPolicy KvPolicy::load(const std::string& path, std::optional<int> n_layers) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) usage_error("KV policy file '{}' is a directory", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) usage_error("cannot open KV policy file '{}'", path);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) usage_error("cannot read KV policy file '{}'", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    usage_error("KV policy file '{}' is not valid JSON: {}", path, e.what());
  }
  if (const auto key = first_duplicate_key(text.str()))
    usage_error("KV policy file '{}' states the key '{}' twice", path, *key);
  try {
    KvPolicy p = from_json(j);
    if (n_layers) p.validate(*n_layers);
    return p;
  } catch (const UsageError& e) {
    usage_error("{}: {}", path, e.what());
  }
}

nlohmann::json KvPolicy::to_json(int n_layers) const {
  validate(n_layers);
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < n_layers; ++l) {
    nlohmann::json entry = nlohmann::json::object();
    for (Role r : {Role::K, Role::V}) {
      const char* key = r == Role::K ? "k" : "v";
      if (const ChannelSubset* sub = subset(l, r))
        entry[key] = {{"scheme", fmt::format("int{}:tensor:sym", sub->bits)},
                      {"channels", sub->channels},
                      {"scale", to_string(sub->scale)}};
      else
        entry[key] = to_string(scheme(l, r));
    }
    layers.push_back(entry);
  }
  return {{"spec", name()}, {"layers", layers}, {"storage", storage_ == Storage::kPacked ? "packed" : "simulated"},
          {"compat", compat_paper_ ? "paper" : "none"}};
}

}  // namespace kvaudit::kv
