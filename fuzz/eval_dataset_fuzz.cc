// libFuzzer target for the prompt datasets (SPEC.md §4 "Benchmarks", docs/EVAL.md): a user's
// FILE.csv / FILE.jsonl / FILE.txt and the staged files the built-in names read (AdvBench, HarmBench,
// XSTest CSVs; the paper's custom .txt lists), then de-duplication and the seeded --limit subset.
// The first input byte picks the reader (and --column); the rest is the file. Any input either
// loads or throws UsageError.
// Build and run: scripts/fuzz.sh 120 eval_dataset
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "eval/benchmarks.h"
#include "eval/csv.h"
#include "fuzz_file.h"

namespace {

namespace fs = std::filesystem;

// Writes the file a built-in benchmark reads under a scratch data directory.
void stage(const std::string& rel, const std::string& bytes) {
  const fs::path p = kvaudit::fuzz::scratch_dir() / "data" / rel;
  fs::create_directories(p.parent_path());
  kvaudit::fuzz::write_input(fs::relative(p, kvaudit::fuzz::scratch_dir()).string(), bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvaudit;
  if (size == 0) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string data_dir = (fuzz::scratch_dir() / "data").string();
  eval::BenchSelection sel;
  sel.data_dir = data_dir;
  sel.limit = data[0] & 0x10 ? 3 : 0;
  sel.seed = data[0] >> 5;
  sel.column = data[0] & 0x08 ? "prompt" : "";
  switch (data[0] % 8) {
    case 0: sel.names = {fuzz::write_input("user.csv", bytes)}; break;
    case 1: sel.names = {fuzz::write_input("user.jsonl", bytes)}; break;
    case 2: sel.names = {fuzz::write_input("user.txt", bytes)}; break;
    case 3: stage("advbench/harmful_behaviors.csv", bytes), sel.names = {"advbench"}; break;
    case 4: stage("harmbench/harmbench_behaviors_text_test.csv", bytes), sel.names = {"harmbench:contextual"}; break;
    case 5: stage("xstest/xstest_prompts.csv", bytes), sel.names = {"xstest:safe"}; break;
    case 6:
      for (const char* cat : {"refusal", "privacy", "jailbreak"}) stage(std::string("paper_custom/") + cat + ".txt", bytes);
      sel.names = {"custom"};
      break;
    default: {  // the CSV reader on its own, every record against the header
      try {
        const eval::CsvTable t = eval::parse_csv(bytes, "fuzz.csv");
        if (t.rows.size() != t.row_lines.size()) std::abort();
        for (const auto& row : t.rows)
          if (row.size() != t.header.size()) std::abort();
      } catch (const UsageError&) {
      }
      return 0;
    }
  }
  try {
    const eval::LoadedBenchmarks b = eval::load_benchmarks(sel);
    if (sel.limit && b.prompts.size() > sel.limit) std::abort();
  } catch (const UsageError&) {
  }
  return 0;
}
