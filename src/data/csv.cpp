// RFC-4180 CSV record reader with line tracking, and field quoting; see include/xlt/data/csv.h.
#include "xlt/data/csv.h"

namespace xlt::data {

CsvReader::CsvReader(std::string_view text, char delim) : text_(text), delim_(delim) {
  if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
}

CsvReader::Status CsvReader::next(std::vector<std::string>& fields) {
  fields.clear();
  error_.clear();
  blank_ = false;
  if (pos_ >= text_.size()) return Status::kEnd;
  record_line_ = line_;
  const size_t start = pos_;
  std::string field;
  bool quoted = false;      // inside a quoted field
  bool was_quoted = false;  // the current field was quoted (and its quote has closed)
  bool field_started = false;

  auto fail = [&](std::string message) {
    error_ = std::move(message);
    // Resynchronise at the end of the physical line so the caller can continue.
    while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
    if (pos_ < text_.size()) {
      ++pos_;
      ++line_;
    }
    raw_ = text_.substr(start, pos_ - start);
    return Status::kError;
  };

  while (pos_ < text_.size()) {
    char c = text_[pos_];
    if (quoted) {
      if (c == '"') {
        if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
          field.push_back('"');
          pos_ += 2;
          continue;
        }
        quoted = false;
        was_quoted = true;
        ++pos_;
        continue;
      }
      if (c == '\n') ++line_;
      field.push_back(c);
      ++pos_;
      continue;
    }
    if (c == delim_) {
      fields.push_back(std::move(field));
      field.clear();
      was_quoted = false;
      field_started = false;
      ++pos_;
      continue;
    }
    if (c == '\n' || (c == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ||
        (c == '\r' && pos_ + 1 == text_.size())) {
      size_t end = pos_;
      pos_ += (c == '\r' && pos_ + 1 < text_.size()) ? 2 : 1;
      ++line_;
      fields.push_back(std::move(field));
      raw_ = text_.substr(start, end - start);
      blank_ = fields.size() == 1 && fields[0].empty() && !was_quoted;
      return Status::kOk;
    }
    if (was_quoted) return fail("text after the closing quote of a quoted field");
    if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
      ++pos_;
      continue;
    }
    // A quote inside an unquoted field is kept literally (as Python's csv module does).
    field.push_back(c);
    field_started = true;
    ++pos_;
  }
  if (quoted) {
    error_ = "unterminated quoted field (opened on this line, still open at the end of the file)";
    raw_ = text_.substr(start);
    return Status::kError;
  }
  fields.push_back(std::move(field));
  raw_ = text_.substr(start);
  blank_ = fields.size() == 1 && fields[0].empty() && !was_quoted;
  return Status::kOk;
}

std::string csv_field(std::string_view s, char delim) {
  bool needs = !s.empty() && (s.front() == ' ' || s.back() == ' ');
  for (char c : s) {
    if (c == delim || c == '"' || c == '\n' || c == '\r') {
      needs = true;
      break;
    }
  }
  if (!needs) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string csv_row(const std::vector<std::string>& fields, char delim) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out.push_back(delim);
    out += csv_field(fields[i], delim);
  }
  return out;
}

}  // namespace xlt::data
