// Text and number formatting for report.html: escaping of untrusted text (prompts and responses
// are adversarial by design) and the display rules of SPEC.md §5-6 (a null metric reads
// "undefined", never 0).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kvaudit::report {

// What an undefined metric (JSON null, missing, NaN or infinite) reads as.
inline constexpr std::string_view kUndefined = "undefined";

// Escapes &, <, >, " and ' so that s is inert both in element text and in a quoted attribute.
// Invalid UTF-8 bytes become U+FFFD so the page is always well-formed.
std::string escape_html(std::string_view s);

// escape_html, plus a <wbr> line-break opportunity after each ';', ',' and '=' (long KV policy
// specs then wrap at their parts instead of mid-token).
std::string escape_html_breakable(std::string_view s);

// j serialized for a <script type="application/json"> block: '<', '>' and '&' become \u003c,
// \u003e, \u0026 (they can only occur inside JSON strings, where the escapes mean the same
// characters), so neither "</script>" nor "<!--" can appear; invalid UTF-8 becomes U+FFFD.
std::string json_for_script(const nlohmann::json& j);

// j[key] as a finite number, or nullopt when j is not an object, the key is missing, null, not a
// number, NaN or infinite.
std::optional<double> opt_number(const nlohmann::json& j, std::string_view key);
std::optional<bool> opt_bool(const nlohmann::json& j, std::string_view key);
std::optional<std::string> opt_string(const nlohmann::json& j, std::string_view key);
// j[key] when it is a non-empty array / a non-empty object, otherwise nullptr (section not run).
const nlohmann::json* opt_array(const nlohmann::json& j, std::string_view key);
const nlohmann::json* opt_object(const nlohmann::json& j, std::string_view key);

// 0.1234 -> "12.3%"; nullopt -> "undefined".
std::string format_percent(std::optional<double> fraction);
// "12.3% (95% CI 8.1-17.4%)" with an en dash; any missing bound prints as "undefined".
// An interval alone: "8.1–17.4%" (the unit once, at the upper bound).
std::string format_percent_range(std::optional<double> low, std::optional<double> high);
std::string format_percent_ci(std::optional<double> value, std::optional<double> low,
                              std::optional<double> high);
// A count with thousands separators: 12975 -> "12,975"; nullopt -> "undefined".
std::string format_count(std::optional<double> x);
// Fixed decimals: format_fixed(1.23456, 3) -> "1.235"; nullopt -> "undefined".
std::string format_fixed(std::optional<double> x, int decimals);
// Three significant digits, scientific below 1e-3 (p-values, ratios spanning decades).
std::string format_general(std::optional<double> x);
// true -> "yes", false -> "no", nullopt -> "undefined".
std::string format_yes_no(std::optional<bool> b);
// Seconds as "4.2 s", "3 min 05 s" or "1 h 02 min".
std::string format_duration(std::optional<double> seconds);

}  // namespace kvaudit::report
