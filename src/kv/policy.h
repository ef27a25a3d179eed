// Which KV scheme each (layer, role) of a sequence uses. The engine asks a policy for the caches of
// a new sequence; every sequence in a batch may carry its own policy (SPEC.md §4).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kv/cache.h"
#include "kv/calibration.h"
#include "kv/layout.h"
#include "kv/spec.h"
#include "kv/subset_cache.h"

namespace kvaudit::kv {

// Simulated: rows stored dequantized (floats). Packed: codes bit-packed with their scales/zeros and an
// fp16 residual, at the scheme's real size. Both return bit-identical rows() (SPEC.md §3 Memory).
enum class Storage { kSimulated, kPacked };

class KvPolicy {
 public:
  // The 16-bit baseline: every layer and role stored unchanged.
  KvPolicy() = default;

  // `--kv SPEC` (SPEC.md §3 grammar). Throws UsageError pointing at the offending token. Layer lists
  // are checked against n_layers when given, else by validate() / make_cache().
  static KvPolicy parse(std::string_view spec, std::optional<int> n_layers = std::nullopt);
  // `--kv-policy FILE.json`: {"spec": "..."} or {"layers": [{"k": SPEC, "v": SPEC}, ...]} (entry i =
  // layer i; then the model must have exactly that many layers; a "spec" beside them must name the
  // same scheme at every site, unless a site holds a channel subset), optionally with "storage":
  // "simulated"|"packed" and "compat": "paper"|"none". A role may instead hold a channel subset,
  // {"scheme": "int3:tensor:sym", "channels": [...], "scale": "tensor"|"channel"} (the ablations of
  // SPEC.md §5; kv/subset_cache.h). Unknown keys are errors. Throws UsageError.
  static KvPolicy from_json(const nlohmann::json& j);
  // Reads a policy file; with n_layers, also validate(n_layers). Every error names the file.
  static KvPolicy load(const std::string& path, std::optional<int> n_layers = std::nullopt);
  // Explicit per-layer, per-role form (what `audit` writes); from_json(to_json(n)) resolves equally.
  nlohmann::json to_json(int n_layers) const;

  // Throws UsageError if a layers[...] index is >= n_layers, or a policy file's "layers" list does not
  // have exactly n_layers entries.
  void validate(int n_layers) const;

  // The scheme for one layer and role, after later parts override earlier ones.
  SchemeSpec scheme(int layer, Role role) const;
  // True when this layer's keys are quantized before RoPE (`@pre`): the engine then appends
  // un-rotated keys and rotates the rows the cache returns.
  bool keys_pre_rope(int layer) const;
  // Throws UsageError when the geometry does not fit the scheme (group size, llama.cpp blocks of 32,
  // +had needs a power-of-two head_dim) or a calibrated scheme has no calibration for this site.
  std::unique_ptr<LayerCache> make_cache(int layer, Role role, CacheGeometry g) const;
  // The site as plain data a kernel can read (kv/layout.h), or nullopt when its scheme is not stored
  // that way (kv/registry.h scheme_layout); a device engine keeps those with the host caches.
  std::optional<KvLayout> layout(int layer, Role role, CacheGeometry g) const;
  // Programmatic: quantize only the channels s.channels of this layer and role (SPEC.md §5 ablation),
  // overriding the spec there. The channels are checked against the geometry by make_cache.
  void set_subset(int layer, Role role, ChannelSubset s);
  // The subset of this site, or nullptr.
  const ChannelSubset* subset(int layer, Role role) const;
  // Canonical spec string ("fp16" for the baseline), without the parts that change no site;
  // parse(name()) gives an equal policy when it has no channel subsets (those are named
  // "layers[L].k=subset(int3:tensor,Nch)", not parseable).
  std::string name() const;
  bool is_baseline() const;

  // fp8 `scale=calib`, `nuq`, `+protect` need statistics; make_cache throws UsageError without them.
  bool needs_calibration() const;
  void calibrate(std::shared_ptr<const Calibration> calibration) { calibration_ = std::move(calibration); }
  const Calibration* calibration() const { return calibration_.get(); }

  void set_storage(Storage s) { storage_ = s; }
  Storage storage() const { return storage_; }
  // `--compat paper`: per-forward-call scales for `tensor` and `channel` (SPEC.md §3).
  void set_compat_paper(bool on) { compat_paper_ = on; }
  bool compat_paper() const { return compat_paper_; }

  const std::vector<SpecPart>& parts() const { return parts_; }
  // A policy file's "model": the weights' sha256 it was prescribed for ("" when not stated).
  const std::string& stated_model() const { return stated_model_; }

 private:
  std::vector<SpecPart> parts_;  // in order; later parts override earlier ones
  struct SubsetSite {
    int layer;
    Role role;
    ChannelSubset subset;
  };
  std::vector<SubsetSite> subsets_;  // override parts_ at their sites
  int declared_layers_ = -1;         // a policy file's "layers" count; -1 when not given
  std::shared_ptr<const Calibration> calibration_;
  Storage storage_ = Storage::kSimulated;
  bool compat_paper_ = false;
  std::string stated_model_;
};

}  // namespace kvaudit::kv
