// eval_dataset_fuzz compiles eval/benchmarks.cc without the IFEval scorer (ICU, CLD2, PCRE2 and the
// twenty files of eval/ifeval, which the sanitizer stage does not build). Its inputs are benchmark
// files and the staged files of the other built-in names; it never names `ifeval`, so reaching
// this is a bug in the harness, not an input the fuzzer found.
#include <cstdlib>

#include "eval/ifeval/bench_metrics.h"

namespace kvaudit::eval::ifeval {

std::vector<Prompt> load_prompts(const std::string&) { std::abort(); }

}  // namespace kvaudit::eval::ifeval
