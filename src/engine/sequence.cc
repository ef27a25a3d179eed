#include "core/error.h"
#include "engine/engine.h"
#include "model/arch.h"

namespace kvaudit::engine {

Sequence::Sequence(const model::ModelConfig& config, std::shared_ptr<const kv::KvPolicy> policy, int64_t id)
    : id_(id), policy_(policy ? std::move(policy) : std::make_shared<const kv::KvPolicy>()) {
  kv::CacheGeometry g{config.n_kv_heads, config.head_dim};
  // llama.cpp's key channel order for its block types (kv/schemes/llama_cpp.h)
  g.llama_cpp_pairs_adjacent =
      !config.arch.empty() && model::arch_spec(config.arch).llama_cpp_rope == model::LlamaCppRope::kNorm;
  for (int l = 0; l < config.n_layers; ++l) {
    k_.push_back(policy_->make_cache(l, kv::Role::K, g));
    v_.push_back(policy_->make_cache(l, kv::Role::V, g));
  }
  k_rotated_.resize(size_t(config.n_layers));
}

size_t Sequence::kv_bytes() const {
  size_t b = 0;
  for (size_t l = 0; l < k_.size(); ++l) b += k_[l]->bytes() + v_[l]->bytes();
  return b + (backend_state_ ? backend_state_->kv_bytes() : 0);
}

}  // namespace kvaudit::engine
