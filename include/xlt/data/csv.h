// RFC-4180 CSV: a record reader that tracks physical line numbers (quoted fields may span lines)
// and a field quoter for writers. Used by the hf-csv NLI reader and by result tables.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xlt::data {

// Splits `text` into CSV records. Fields are separated by `delim`; a field that starts with '"'
// is quoted: it ends at the next lone '"', and '""' inside it is one '"'; it may contain the
// delimiter, CR and LF. Records end at LF or CRLF outside quotes. A UTF-8 byte-order mark at the
// start is skipped.
class CsvReader {
 public:
  explicit CsvReader(std::string_view text, char delim = ',');

  enum class Status { kOk, kEnd, kError };
  // Reads the next record into `fields`. On kError, `error()` says what (unterminated quote,
  // text after a closing quote) and the reader has skipped to the end of that record's line.
  Status next(std::vector<std::string>& fields);
  // 1-based physical line where the last record started.
  int64_t line() const { return record_line_; }
  const std::string& error() const { return error_; }
  // True when the last record was an empty line (one empty field).
  bool blank() const { return blank_; }
  // The raw bytes of the last record (for UTF-8 checks and messages).
  std::string_view raw() const { return raw_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  char delim_;
  int64_t line_ = 1;
  int64_t record_line_ = 0;
  std::string error_;
  bool blank_ = false;
  std::string_view raw_;
};

// Quotes a field for CSV output when it contains the delimiter, '"', CR or LF (or starts/ends
// with a space), doubling inner quotes; returns it unchanged otherwise.
std::string csv_field(std::string_view s, char delim = ',');
// Joins fields with csv_field() quoting; no line terminator.
std::string csv_row(const std::vector<std::string>& fields, char delim = ',');

}  // namespace xlt::data
