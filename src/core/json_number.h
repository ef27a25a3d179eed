// A metric as JSON: the number, or null where it is undefined (NaN) or infinite. SPEC: undefined is
// null, never 0 (and JSON has no NaN or inf).
#pragma once
#include <cmath>

#include <nlohmann/json.hpp>

namespace kvaudit {

template <class Json = nlohmann::ordered_json>
Json number_or_null(double x) {
  return std::isfinite(x) ? Json(x) : Json(nullptr);
}

}  // namespace kvaudit
