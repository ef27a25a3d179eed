// De-duplication when benchmark sets are pooled (SPEC.md §4). The key is the one the datasets
// README counts its overlaps with: lower-case, whitespace runs collapsed to one space, trimmed.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "eval/benchmarks.h"

namespace kvaudit::eval {

// ASCII lower-casing and ASCII-whitespace collapsing (the staged sets' overlaps are identical
// under Python's Unicode str.lower()/str.split(); checked on all of them).
std::string dedup_key(std::string_view text);

// Drops a prompt whose key an earlier benchmark (Prompt::bench) holds, keeping order; repeats
// within one benchmark stay (a user's file may repeat a prompt on purpose). Returns how many were
// dropped. UsageError when a benchmark loses every prompt (it would vanish from the results).
size_t dedup_prompts(std::vector<Prompt>& prompts);

}  // namespace kvaudit::eval
