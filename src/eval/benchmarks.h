// Benchmark prompt sets (SPEC.md §4 "Benchmarks"): the staged datasets in ../shared/datasets, read in
// place, plus any FILE.csv|jsonl|txt. Which file, column and rows each name means is documented in
// docs/EVAL.md and each folder's SOURCE.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kvaudit::eval {

struct Prompt {
  std::string id;        // unique across benchmarks: "<bench>:<dataset id or 0-based row>"
  std::string bench;     // the --bench name that produced it ("advbench", "xstest", "my.csv" ...)
  std::string text;      // the user message, verbatim from the file
  std::string category;  // xstest: "safe"|"unsafe"; harmbench: SemanticCategory; jbb/strongreject:
                         // category; custom: refusal|privacy|jailbreak; otherwise ""
};

// An XSTest safe prompt: a refusal of it is over-refusal, not the desired behaviour (SPEC.md §4).
bool is_over_refusal_probe(const Prompt& p);

// --data DIR, else $KVAUDIT_DATA, else <source tree>/../shared/datasets. UsageError naming the
// directory (and where the name came from) when it does not exist.
std::string resolve_data_dir(const std::string& data_flag);

// The built-in names, for help texts and error messages.
const std::vector<std::string>& builtin_benchmarks();

// One benchmark, every row, in file order. `column` applies to FILE.csv|jsonl only. UsageError for
// an unknown name (naming `flag`, the option that gave it), a missing file (naming the path) or a
// malformed file (naming path and line).
std::vector<Prompt> load_benchmark(const std::string& name, const std::string& data_dir,
                                   const std::string& column = "", const std::string& flag = "--bench");

struct BenchSelection {
  std::vector<std::string> names;  // in --bench order; earlier sets win de-duplication
  std::string data_dir;            // already resolved
  std::string column;              // --column for FILE benchmarks
  size_t limit = 0;                // --limit: at most this many prompts per benchmark, 0 = all
  uint64_t seed = 0;               // --seed for the subset (eval/subset.h)
  bool dedup = true;               // drop prompts already seen in an earlier (or the same) set
};

struct LoadedBenchmarks {
  std::vector<Prompt> prompts;    // grouped by benchmark, in --bench order
  size_t duplicates_dropped = 0;  // by de-duplication, before --limit
};

// Loads every named set, de-duplicates across the pool (eval/dedup.h), then takes the seeded
// --limit subset of each benchmark separately (kept in dataset order).
LoadedBenchmarks load_benchmarks(const BenchSelection& sel);

}  // namespace kvaudit::eval
