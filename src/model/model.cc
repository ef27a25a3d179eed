#include "model/model.h"

#include "core/error.h"

namespace kvaudit::model {

Model load_model(const std::string& path, const LoadOptions& opt) {
  runtime_error("load_model: not implemented yet ({})", path);
}

}  // namespace kvaudit::model
