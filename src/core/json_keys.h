// Duplicate keys in a JSON object. nlohmann::json (like Python's json) keeps the last of a key stated
// twice, so a policy or config.json that says "default" twice would have one value dropped without
// a word; the loaders of user-written files refuse such files instead.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace kvaudit {

// The first key that an object of `text` states twice, as "outer.inner" (array entries as [i]);
// nullopt when there is none or `text` is not valid JSON (the caller's parse reports that).
std::optional<std::string> first_duplicate_key(std::string_view text);

}  // namespace kvaudit
