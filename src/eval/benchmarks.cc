#include "eval/benchmarks.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/version.h"
#include "eval/csv.h"
#include "eval/dedup.h"
#include "eval/ifeval/bench_metrics.h"
#include "eval/subset.h"
#include "io/atomic_file.h"
#include "text/utf8.h"

namespace kvaudit::eval {

namespace fs = std::filesystem;

bool is_over_refusal_probe(const Prompt& p) {
  return p.bench.rfind("xstest", 0) == 0 && p.category == "safe";
}

std::string resolve_data_dir(const std::string& data_flag) {
  std::string dir = data_flag, origin = "--data";
  if (dir.empty()) {
    const char* env = std::getenv("KVAUDIT_DATA");
    if (env && *env) {
      dir = env;
      origin = "$KVAUDIT_DATA";
    } else {
      dir = (fs::path(kSourceDir) / ".." / "shared" / "datasets").lexically_normal().string();
      origin = "the default next to the source tree; set --data or $KVAUDIT_DATA";
    }
  }
  if (!fs::is_directory(dir)) usage_error("data directory '{}' ({}) does not exist", dir, origin);
  return dir;
}

namespace {

std::string join(const std::string& dir, const std::string& rel) {
  return (fs::path(dir) / rel).string();
}

// Each CSV-backed set: rows of `file` -> Prompt, optionally filtered.
struct CsvBench {
  const char* file;
  const char* text_col;
  const char* id_col;        // nullptr: 0-based data row index
  const char* category_col;  // nullptr: no category
};

using RowFilter = std::function<bool(const CsvTable&, size_t)>;

std::vector<Prompt> prompts_from_table(const std::string& name, const CsvTable& t,
                                       const CsvBench& spec, const RowFilter& keep = {}) {
  const size_t text = t.column(spec.text_col);
  constexpr size_t kNone = size_t(-1);
  const size_t id = spec.id_col ? t.column(spec.id_col) : kNone;
  const size_t cat = spec.category_col ? t.column(spec.category_col) : kNone;
  std::vector<Prompt> out;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (keep && !keep(t, r)) continue;
    const auto& row = t.rows[r];
    out.push_back({name + ":" + (id != kNone ? row[id] : std::to_string(r)), name, row[text],
                   cat != kNone ? row[cat] : std::string()});
  }
  return out;
}

std::vector<Prompt> load_csv_bench(const std::string& name, const std::string& data_dir,
                                   const CsvBench& spec, const RowFilter& keep = {}) {
  return prompts_from_table(name, read_csv(join(data_dir, spec.file)), spec, keep);
}

// HarmBench test split (harmbench_behaviors_text_test.csv, the split HarmBench evaluates on).
// Plain `harmbench` keeps FunctionalCategory == standard (159 rows), as the paper's loader does;
// copyright rows are judged by hash, not refusal, and are never loaded.
std::vector<Prompt> load_harmbench(const std::string& data_dir, bool contextual) {
  const std::string name = contextual ? "harmbench:contextual" : "harmbench";
  const CsvBench spec{"harmbench/harmbench_behaviors_text_test.csv", "Behavior", "BehaviorID",
                      "SemanticCategory"};
  const std::string want = contextual ? "contextual" : "standard";
  const CsvTable t = read_csv(join(data_dir, spec.file));
  const size_t fc = t.column("FunctionalCategory"), ctx = t.column("ContextString");
  auto prompts = prompts_from_table(
      name, t, spec, [&](const CsvTable& tt, size_t r) { return tt.rows[r][fc] == want; });
  if (contextual) {
    // HarmBench's direct-request format for contextual behaviors: context, a rule, the request.
    size_t i = 0;
    for (size_t r = 0; r < t.rows.size(); ++r)
      if (t.rows[r][fc] == want) {
        prompts[i].text = t.rows[r][ctx] + "\n\n---\n\n" + prompts[i].text;
        ++i;
      }
  }
  return prompts;
}

std::vector<Prompt> load_xstest(const std::string& name, const std::string& data_dir,
                                const std::string& only_label) {
  const CsvBench spec{"xstest/xstest_prompts.csv", "prompt", "id", "label"};
  if (only_label.empty()) return load_csv_bench(name, data_dir, spec);
  const CsvTable t = read_csv(join(data_dir, spec.file));
  const size_t label = t.column("label");
  return prompts_from_table(name, t, spec,
                            [&](const CsvTable& tt, size_t r) { return tt.rows[r][label] == only_label; });
}

// The paper's 63 custom prompts: refusal, privacy, jailbreak (its loader's order); one prompt per
// line, '#' lines are comments, surrounding whitespace stripped as the paper's loader does.
std::vector<Prompt> load_custom(const std::string& data_dir) {
  std::vector<Prompt> out;
  for (const char* cat : {"refusal", "privacy", "jailbreak"}) {
    const std::string bytes = io::read_file(join(data_dir, std::string("paper_custom/") + cat + ".txt"));
    size_t n = 0, pos = 0;
    while (pos < bytes.size()) {
      size_t end = bytes.find('\n', pos);
      if (end == std::string::npos) end = bytes.size();
      std::string line = bytes.substr(pos, end - pos);
      pos = end + 1;
      const size_t b = line.find_first_not_of(" \t\r\f\v");
      if (b == std::string::npos) continue;
      line = line.substr(b, line.find_last_not_of(" \t\r\f\v") - b + 1);
      if (line[0] == '#') continue;
      out.push_back({"custom:" + std::string(cat) + ":" + std::to_string(n++), "custom", line, cat});
    }
  }
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// FILE.csv: --column, else the only column, else a column named "prompt".
std::vector<Prompt> load_user_csv(const std::string& path, const std::string& column) {
  const CsvTable t = read_csv(path);
  size_t col = 0;
  if (!column.empty()) {
    col = t.column(column);
  } else if (t.header.size() != 1) {
    auto p = t.find_column("prompt");
    if (!p) usage_error("{}: has {} columns and none is 'prompt'; choose one with --column", path,
                        t.header.size());
    col = *p;
  }
  std::vector<Prompt> out;
  for (size_t r = 0; r < t.rows.size(); ++r)
    out.push_back({path + ":" + std::to_string(r), path, t.rows[r][col], ""});
  return out;
}

// FILE.jsonl: each non-blank line is an object (field --column, default "prompt") or a string.
std::vector<Prompt> load_user_jsonl(const std::string& path, const std::string& column) {
  const std::string bytes = io::read_file(path);
  const std::string field = column.empty() ? "prompt" : column;
  std::vector<Prompt> out;
  size_t pos = 0, line_no = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find('\n', pos);
    if (end == std::string::npos) end = bytes.size();
    const std::string line = bytes.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      usage_error("{}:{}: not valid JSON ({})", path, line_no, e.what());
    }
    std::string text;
    if (j.is_string()) {
      text = j.get<std::string>();
    } else if (j.is_object() && j.contains(field) && j[field].is_string()) {
      text = j[field].get<std::string>();
    } else {
      usage_error("{}:{}: expected a JSON string or an object with a string field '{}' (--column)",
                  path, line_no, field);
    }
    out.push_back({path + ":" + std::to_string(out.size()), path, std::move(text), ""});
  }
  return out;
}

// FILE.txt: one prompt per non-blank line, verbatim (a CRLF's CR dropped).
std::vector<Prompt> load_user_txt(const std::string& path) {
  const std::string bytes = io::read_file(path);
  std::vector<Prompt> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find('\n', pos);
    if (end == std::string::npos) end = bytes.size();
    std::string line = bytes.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    out.push_back({path + ":" + std::to_string(out.size()), path, std::move(line), ""});
  }
  return out;
}

// A user file's prompts as the model will see them: an empty one (a JSONL "" or a CSV cell) or one
// that is not UTF-8 (the tokenizer would read U+FFFD there) is refused, named by its id (FILE:index).
std::vector<Prompt> checked_user_prompts(std::vector<Prompt> prompts) {
  for (const Prompt& p : prompts) {
    if (p.text.find_first_not_of(" \t\r\n\f\v") == std::string::npos)
      usage_error("prompt {} is empty", p.id);
    if (const size_t at = text::utf8_invalid_at(p.text); at != std::string_view::npos)
      usage_error("prompt {} is not valid UTF-8 (byte {})", p.id, at);
  }
  return prompts;
}

}  // namespace

const std::vector<std::string>& builtin_benchmarks() {
  static const std::vector<std::string> names = {
      "advbench", "harmbench", "harmbench:contextual", "jbb",           "jbb-benign",
      "strongreject", "xstest", "xstest:safe",        "xstest:unsafe", "custom",
      "ifeval"};
  return names;
}

std::vector<Prompt> load_benchmark(const std::string& name, const std::string& data_dir,
                                   const std::string& column, const std::string& flag) {
  if (name == "advbench")
    return load_csv_bench(name, data_dir, {"advbench/harmful_behaviors.csv", "goal", nullptr, nullptr});
  if (name == "harmbench") return load_harmbench(data_dir, false);
  if (name == "harmbench:contextual") return load_harmbench(data_dir, true);
  // The harmful file's index column has an empty header (a pandas index); benign's is "index".
  if (name == "jbb")
    return load_csv_bench(name, data_dir, {"jailbreakbench/behaviors.csv", "Goal", "", "Category"});
  if (name == "jbb-benign")
    return load_csv_bench(name, data_dir,
                          {"jailbreakbench/benign-behaviors.csv", "goal", "index", "category"});
  if (name == "strongreject")
    return load_csv_bench(name, data_dir,
                          {"strongreject/strongreject_dataset.csv", "forbidden_prompt", nullptr, "category"});
  if (name == "xstest") return load_xstest(name, data_dir, "");
  if (name == "xstest:safe") return load_xstest(name, data_dir, "safe");
  if (name == "xstest:unsafe") return load_xstest(name, data_dir, "unsafe");
  if (name == "custom") return load_custom(data_dir);
  if (name == ifeval::kBench) return ifeval::load_prompts(data_dir);
  if (ends_with(name, ".csv")) return checked_user_prompts(load_user_csv(name, column));
  if (ends_with(name, ".jsonl")) return checked_user_prompts(load_user_jsonl(name, column));
  if (ends_with(name, ".txt")) return checked_user_prompts(load_user_txt(name));
  std::string known;
  for (const auto& b : builtin_benchmarks()) known += (known.empty() ? "" : ", ") + b;
  usage_error("{}: unknown benchmark '{}' (known: {}, or a FILE.csv|jsonl|txt)", flag, name, known);
}

LoadedBenchmarks load_benchmarks(const BenchSelection& sel) {
  if (sel.names.empty()) usage_error("--bench: no benchmark named");
  // Options that would change nothing are refused rather than ignored.
  if (!sel.column.empty() &&
      std::none_of(sel.names.begin(), sel.names.end(), [](const std::string& n) { return ends_with(n, ".csv") || ends_with(n, ".jsonl"); }))
    usage_error("--column '{}' names a column of a FILE.csv or field of a FILE.jsonl benchmark, and --bench names none",
                sel.column);
  if (sel.seed != 0 && sel.limit == 0) usage_error("--seed {} picks the --limit subset; without --limit every prompt runs", sel.seed);
  LoadedBenchmarks out;
  std::vector<Prompt> pool;
  for (size_t i = 0; i < sel.names.size(); ++i) {
    const std::string& name = sel.names[i];
    for (size_t j = 0; j < i; ++j)
      if (sel.names[j] == name) usage_error("--bench: '{}' is named twice", name);
    auto prompts = load_benchmark(name, sel.data_dir, sel.column);
    pool.insert(pool.end(), std::make_move_iterator(prompts.begin()),
                std::make_move_iterator(prompts.end()));
  }
  if (sel.dedup) out.duplicates_dropped = dedup_prompts(pool);
  if (sel.limit == 0) {
    out.prompts = std::move(pool);
    return out;
  }
  // Per benchmark: the pool is grouped by benchmark, so each group is a contiguous run.
  for (size_t begin = 0; begin < pool.size();) {
    size_t end = begin;
    while (end < pool.size() && pool[end].bench == pool[begin].bench) ++end;
    for (size_t i : seeded_subset(end - begin, sel.limit, sel.seed))
      out.prompts.push_back(std::move(pool[begin + i]));
    begin = end;
  }
  return out;
}

}  // namespace kvaudit::eval
