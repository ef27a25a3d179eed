// RFC 4180 CSV reader: quoted fields, doubled quotes, embedded newlines, CRLF or LF records, a
// leading UTF-8 BOM. The datasets in ../shared/datasets need all of these (HarmBench mixes CRLF
// records with LF inside quoted ContextString fields, StrongREJECT has multi-line prompts), and
// their line count is not their row count, so nothing here splits on newlines.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvaudit::eval {

struct CsvTable {
  std::string source;                          // file name, for error messages
  std::vector<std::string> header;             // [n_cols]
  std::vector<std::vector<std::string>> rows;  // [n_rows][n_cols], header excluded
  std::vector<size_t> row_lines;               // [n_rows] 1-based line where each record starts

  // Index of the named column (exact, case-sensitive match), or nullopt.
  std::optional<size_t> find_column(std::string_view name) const;
  // Index of the named column; UsageError naming the file and listing its columns otherwise.
  size_t column(std::string_view name) const;
};

// Parses CSV bytes. The first record is the header. Blank lines between records are skipped (as
// Python's csv.DictReader does); every other record must have as many fields as the header.
// Errors (UsageError) name `source` and the 1-based line: unterminated quote, a character after a
// closing quote, a wrong field count, an empty input.
CsvTable parse_csv(std::string_view bytes, const std::string& source);

// Reads and parses a file; UsageError naming the path when it cannot be read.
CsvTable read_csv(const std::string& path);

}  // namespace kvaudit::eval
