#include "eval/csv.h"


#include "core/error.h"
#include "io/atomic_file.h"

namespace kvaudit::eval {

std::optional<size_t> CsvTable::find_column(std::string_view name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  return std::nullopt;
}

size_t CsvTable::column(std::string_view name) const {
  if (auto i = find_column(name)) return *i;
  std::string cols;
  for (const auto& h : header) cols += (cols.empty() ? "" : ", ") + ("'" + h + "'");
  usage_error("{}: no column '{}' (columns: {})", source, name, cols);
}

namespace {

// One pass over the bytes; `line` counts LF (and lone CR) so errors point at the editor's line.
class CsvParser {
 public:
  CsvParser(std::string_view s, const std::string& source) : s_(s), source_(source) {}

  std::vector<std::vector<std::string>> records(std::vector<size_t>& record_lines) {
    std::vector<std::vector<std::string>> out;
    while (pos_ < s_.size()) {
      if (at_line_end()) {  // a blank line: skipped, as csv.DictReader does
        skip_line_end();
        continue;
      }
      record_lines.push_back(line_);
      out.push_back(record());
    }
    return out;
  }

 private:
  bool at_line_end() const { return s_[pos_] == '\n' || s_[pos_] == '\r'; }

  // Consumes "\r\n", "\n" or a lone "\r" (old Mac files; Python's csv accepts it too).
  void skip_line_end() {
    if (s_[pos_] == '\r' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
  }

  std::vector<std::string> record() {
    std::vector<std::string> fields;
    for (;;) {
      fields.push_back(pos_ < s_.size() && s_[pos_] == '"' ? quoted() : unquoted());
      if (pos_ >= s_.size()) break;
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      skip_line_end();  // quoted()/unquoted() stop only at ',' or a line end
      break;
    }
    return fields;
  }

  std::string unquoted() {
    const size_t begin = pos_;
    while (pos_ < s_.size() && s_[pos_] != ',' && !at_line_end()) {
      if (s_[pos_] == '"')
        usage_error("{}:{}: stray '\"' inside an unquoted field (RFC 4180 §2.5)", source_, line_);
      ++pos_;
    }
    return std::string(s_.substr(begin, pos_ - begin));
  }

  std::string quoted() {
    const size_t start_line = line_;
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size())
        usage_error("{}:{}: quoted field is never closed", source_, start_line);
      const char c = s_[pos_++];
      if (c == '"') {
        if (pos_ < s_.size() && s_[pos_] == '"') {  // "" is one literal quote
          out += '"';
          ++pos_;
          continue;
        }
        if (pos_ < s_.size() && s_[pos_] != ',' && !at_line_end())
          usage_error("{}:{}: unexpected character after a closing quote", source_, line_);
        return out;
      }
      if (c == '\n' || (c == '\r' && (pos_ >= s_.size() || s_[pos_] != '\n'))) ++line_;
      out += c;  // embedded CR/LF kept verbatim
    }
  }

  std::string_view s_;
  const std::string& source_;
  size_t pos_ = 0;
  size_t line_ = 1;
};

}  // namespace

CsvTable parse_csv(std::string_view bytes, const std::string& source) {
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);  // UTF-8 BOM (Excel exports)
  CsvTable t;
  t.source = source;
  std::vector<size_t> lines;
  auto records = CsvParser(bytes, source).records(lines);
  if (records.empty()) usage_error("{}: empty CSV file (no header row)", source);
  t.header = std::move(records.front());
  for (size_t i = 0; i < t.header.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (t.header[i] == t.header[j] && !t.header[i].empty())
        usage_error("{}:{}: the header names column '{}' twice (columns {} and {})", source, lines[0], t.header[i], j + 1,
                    i + 1);
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() != t.header.size())
      usage_error("{}:{}: record has {} fields, the header has {}", source, lines[r],
                  records[r].size(), t.header.size());
    t.rows.push_back(std::move(records[r]));
    t.row_lines.push_back(lines[r]);
  }
  return t;
}

CsvTable read_csv(const std::string& path) { return parse_csv(io::read_file(path), path); }

}  // namespace kvaudit::eval
