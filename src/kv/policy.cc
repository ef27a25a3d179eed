#include "kv/policy.h"

#include <fstream>

#include "core/error.h"
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
  const SchemeSpec s = scheme(layer, Role::K);
  return !s.is_16bit() && s.pre_rope;
}

std::unique_ptr<LayerCache> KvPolicy::make_cache(int layer, Role role, CacheGeometry g) const {
  const SchemeSpec s = scheme(layer, role);
  if (s.kind == SchemeKind::kFp16) return make_plain_cache(g);
  CacheOptions o{storage_, compat_paper_, nullptr, layer};
  if (calibration_) o.stats = calibration_->find(layer, role, role == Role::K && s.pre_rope);
  return make_scheme_cache(s, role, g, o);
}

std::string KvPolicy::name() const {
  if (parts_.empty()) return "fp16";
  std::string out;
  for (const auto& p : parts_) out += (out.empty() ? "" : ";") + to_string(p);
  return out;
}

bool KvPolicy::is_baseline() const {
  for (const auto& p : parts_)
    if (p.scheme.kind != SchemeKind::kFp16) return false;
  return true;
}

bool KvPolicy::needs_calibration() const {
  for (const auto& p : parts_)
    if (p.scheme.needs_calibration()) return true;
  return false;
}

KvPolicy KvPolicy::from_json(const nlohmann::json& j) {
  if (!j.is_object()) usage_error("KV policy: expected a JSON object");
  KvPolicy p;
  try {
    if (j.contains("layers")) {  // the explicit form wins over "spec" (it is what a user edits)
      const auto& layers = j.at("layers");
      if (!layers.is_array()) usage_error("KV policy: \"layers\" must be an array");
      for (size_t l = 0; l < layers.size(); ++l) {
        for (const char* role : {"k", "v"}) {
          if (!layers[l].contains(role)) usage_error("KV policy: layers[{}] has no \"{}\"", l, role);
          const std::string spec = layers[l].at(role).get<std::string>();
          SpecPart part;
          part.layers = {{int(l), int(l)}};
          part.k = role[0] == 'k';
          part.v = !part.k;
          part.scheme = parse_scheme(spec);
          p.parts_.push_back(part);
        }
      }
    } else if (j.contains("spec")) {
      p = parse(j.at("spec").get<std::string>());
    } else {
      usage_error("KV policy: expected \"spec\" or \"layers\"");
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

KvPolicy KvPolicy::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage_error("cannot open KV policy file '{}'", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    usage_error("KV policy file '{}' is not valid JSON: {}", path, e.what());
  }
  try {
    return from_json(j);
  } catch (const UsageError& e) {
    usage_error("{}: {}", path, e.what());
  }
}

nlohmann::json KvPolicy::to_json(int n_layers) const {
  validate(n_layers);
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < n_layers; ++l)
    layers.push_back({{"k", to_string(scheme(l, Role::K))}, {"v", to_string(scheme(l, Role::V))}});
  return {{"spec", name()}, {"layers", layers}, {"storage", storage_ == Storage::kPacked ? "packed" : "simulated"},
          {"compat", compat_paper_ ? "paper" : "none"}};
}

}  // namespace kvaudit::kv
