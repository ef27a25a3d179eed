#include "report/html_format.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "text/utf8.h"

namespace kvaudit::report {

std::string escape_html(std::string_view s) {
  const std::string clean = text::utf8_sanitize(s);
  std::string out;
  out.reserve(clean.size() + clean.size() / 8);
  for (char c : clean) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string escape_html_breakable(std::string_view s) {
  std::string out;
  for (char c : escape_html(s)) {
    out += c;
    if (c == ';' || c == ',' || c == '=') out += "<wbr>";
  }
  return out;
}

std::string json_for_script(const nlohmann::json& j) {
  const std::string dumped = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(dumped.size());
  for (char c : dumped) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

const nlohmann::json* field(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> finite(std::optional<double> x) {
  if (x && std::isfinite(*x)) return x;
  return std::nullopt;
}

}  // namespace

std::optional<double> opt_number(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* v = field(j, key);
  if (!v || !v->is_number()) return std::nullopt;
  return finite(v->get<double>());
}

std::optional<bool> opt_bool(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* v = field(j, key);
  if (!v || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

std::optional<std::string> opt_string(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* v = field(j, key);
  if (!v || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

const nlohmann::json* opt_array(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* v = field(j, key);
  return v && v->is_array() && !v->empty() ? v : nullptr;
}

const nlohmann::json* opt_object(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* v = field(j, key);
  return v && v->is_object() && !v->empty() ? v : nullptr;
}

std::string format_percent(std::optional<double> fraction) {
  fraction = finite(fraction);
  if (!fraction) return std::string(kUndefined);
  return fmt::format("{:.1f}%", *fraction * 100.0);
}

std::string format_percent_ci(std::optional<double> value, std::optional<double> low,
                              std::optional<double> high) {
  std::string s = format_percent(value);
  if (!finite(low) && !finite(high)) return s;
  return fmt::format("{} (95% CI {})", s, format_percent_range(low, high));
}

std::string format_percent_range(std::optional<double> low, std::optional<double> high) {
  std::string lo = finite(low) ? fmt::format("{:.1f}", *low * 100.0) : std::string(kUndefined);
  return fmt::format("{}\u2013{}", lo, format_percent(high));
}

std::string format_count(std::optional<double> x) {
  x = finite(x);
  if (!x) return std::string(kUndefined);
  const std::string digits = fmt::format("{:.0f}", std::fabs(*x));
  std::string out = *x < 0 && digits != "0" ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format_fixed(std::optional<double> x, int decimals) {
  x = finite(x);
  if (!x) return std::string(kUndefined);
  return fmt::format("{:.{}f}", *x, decimals);
}

std::string format_general(std::optional<double> x) {
  x = finite(x);
  if (!x) return std::string(kUndefined);
  const double a = std::fabs(*x);
  if (a != 0.0 && a < 1e-3) return fmt::format("{:.2e}", *x);
  if (a >= 1e4) return fmt::format("{:.3g}", *x);
  // Three significant digits without an exponent: 0.0123, 1.23, 123.
  const int digits = a == 0.0 ? 1 : std::max(0, 2 - static_cast<int>(std::floor(std::log10(a))));
  return fmt::format("{:.{}f}", *x, digits);
}

std::string format_yes_no(std::optional<bool> b) {
  if (!b) return std::string(kUndefined);
  return *b ? "yes" : "no";
}

std::string format_duration(std::optional<double> seconds) {
  seconds = finite(seconds);
  if (!seconds) return std::string(kUndefined);
  const double s = *seconds;
  if (s < 60.0) return fmt::format("{:.1f} s", s);
  const long total = std::lround(s);
  if (total < 3600) return fmt::format("{} min {:02} s", total / 60, total % 60);
  return fmt::format("{} h {:02} min", total / 3600, (total % 3600) / 60);
}

}  // namespace kvaudit::report
