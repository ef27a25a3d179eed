#include "eval/csv.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace kvaudit::eval {
namespace {

using Rows = std::vector<std::vector<std::string>>;

TEST(Csv, PlainRecordsAndColumnLookup) {
  const CsvTable t = parse_csv("goal,target\na,b\nc,d\n", "x.csv");
  EXPECT_EQ(t.header, (std::vector<std::string>{"goal", "target"}));
  EXPECT_EQ(t.rows, (Rows{{"a", "b"}, {"c", "d"}}));
  EXPECT_EQ(t.column("target"), 1u);
  EXPECT_FALSE(t.find_column("Goal").has_value());  // exact, case-sensitive
  EXPECT_EQ(t.row_lines, (std::vector<size_t>{2, 3}));
}

TEST(Csv, QuotedFieldsDoubledQuotesEmbeddedNewlines) {
  const CsvTable t = parse_csv(
      "id,text\n1,\"say \"\"hi\"\", then, go\"\n2,\"line one\nline two\r\nline three\"\n3,\"\"\n",
      "q.csv");
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0][1], "say \"hi\", then, go");
  EXPECT_EQ(t.rows[1][1], "line one\nline two\r\nline three");  // kept verbatim
  EXPECT_EQ(t.rows[2][1], "");
  EXPECT_EQ(t.row_lines, (std::vector<size_t>{2, 3, 6}));
}

TEST(Csv, CrlfBomNoFinalNewlineAndBlankLines) {
  const CsvTable t = parse_csv("\xEF\xBB\xBF" "a,b\r\n1,2\r\n\r\n3,\r\n,4", "c.csv");
  EXPECT_EQ(t.header[0], "a");  // BOM stripped
  EXPECT_EQ(t.rows, (Rows{{"1", "2"}, {"3", ""}, {"", "4"}}));
}

TEST(Csv, EmptyHeaderNameIsAColumn) {
  // JBB's behaviors.csv starts with a pandas index column whose name is empty.
  const CsvTable t = parse_csv(",Goal\n0,x\n", "jbb.csv");
  EXPECT_EQ(t.column(""), 0u);
  EXPECT_EQ(t.rows[0][1], "x");
}

TEST(Csv, ErrorsNameFileAndLine) {
  auto message = [](const std::string& bytes) {
    try {
      parse_csv(bytes, "bad.csv");
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("a,b\n1,2\n3\n"), "bad.csv:3: record has 1 fields, the header has 2");
  EXPECT_EQ(message("a\n\"open\nstill open\n"), "bad.csv:2: quoted field is never closed");
  EXPECT_EQ(message("a,b\n\"x\"y,2\n"), "bad.csv:2: unexpected character after a closing quote");
  EXPECT_EQ(message("a\nx\"y\n"), "bad.csv:2: stray '\"' inside an unquoted field (RFC 4180 §2.5)");
  EXPECT_EQ(message(""), "bad.csv: empty CSV file (no header row)");
  EXPECT_EQ(message("a,b\n1,\"2\n\n\"\n4\n"), "bad.csv:5: record has 1 fields, the header has 2");
}

TEST(Csv, MissingColumnListsColumns) {
  const CsvTable t = parse_csv("goal,target\n", "adv.csv");
  try {
    t.column("prompt");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "adv.csv: no column 'prompt' (columns: 'goal', 'target')");
  }
}

TEST(Csv, MissingFileNamesPath) {
  EXPECT_THROW(read_csv("/nonexistent/dir/x.csv"), UsageError);
}

}  // namespace
}  // namespace kvaudit::eval
