#include <filesystem>

#include "eval/results.h"
#include "io/atomic_file.h"

namespace kvaudit::eval {

void write_results(const std::string& dir, const RunResults& r) {
  io::write_file_atomic((std::filesystem::path(dir) / "results.json").string(), results_json(r));
}

}  // namespace kvaudit::eval
