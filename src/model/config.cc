#include "model/config.h"

#include <cmath>

#include "core/error.h"

namespace kvaudit::model {

float ModelConfig::attn_scale() const {
  const float s = query_pre_attn_scalar > 0 ? query_pre_attn_scalar : float(head_dim);
  return 1.0f / std::sqrt(s);
}

ModelConfig parse_config_json(const nlohmann::json& j, const std::string& source) {
  runtime_error("parse_config_json: not implemented yet ({})", source);
}

ModelConfig read_config_json(const std::string& path) {
  runtime_error("read_config_json: not implemented yet ({})", path);
}

void validate_config(const ModelConfig& c, const std::string& source) {}

}  // namespace kvaudit::model
