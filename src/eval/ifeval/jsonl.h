// The JSONL reading IFEval's inputs share (the dataset, `score`'s responses): each non-blank line
// parsed as JSON, a bad one a UsageError naming the file and line.
#pragma once
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace kvaudit::eval::ifeval {

// Calls f(where, line_no, value) for each non-blank line of `path`, in order; where = "path:line".
void for_each_jsonl(const std::string& path,
                    const std::function<void(const std::string& where, size_t line_no, const nlohmann::json&)>& f);

}  // namespace kvaudit::eval::ifeval
