// Readers for the NLI file layouts (XNLI-1.0 TSV, XTREME TSV, MultiNLI JSONL, Hugging Face JSONL
// and CSV); see include/xlt/data/nli.h and docs/data.md. One pass over the file; every record is
// parsed into a RowResult, then filtered by language, then validated, so that the counts and
// messages are the same whatever the layout.
#include <utf8proc.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "core/strings.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/data/csv.h"
#include "xlt/data/nli.h"
#include "xlt/data/spec.h"

namespace xlt::data {
using xlt::detail::ascii_lower;
namespace fs = std::filesystem;

namespace {

// One record after layout-specific parsing.
struct RowResult {
  bool bad = false;
  BadRow reason = BadRow::kMalformed;
  std::string detail;
  bool no_gold = false;
  bool lang_known = false;
  std::string lang;
  NliExample ex;

  void fail(BadRow r, std::string d) {
    bad = true;
    reason = r;
    detail = std::move(d);
  }
};

std::string join(const std::vector<std::string>& v, std::string_view sep = ", ") {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? std::string(sep) : "") + v[i];
  return out;
}

std::vector<std::string> split_tabs(std::string_view line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      out.emplace_back(line.substr(start));
      return out;
    }
    out.emplace_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

// A label given as a name: entailment/neutral/contradiction ("contradictory" is XTREME's older
// spelling), "-" (no gold label), "" (unlabelled).
void set_label_from_name(RowResult& row, std::string_view name, const LabelSet& labels) {
  if (name == "-") {
    row.no_gold = true;
    return;
  }
  if (name.empty()) return;
  int id = labels.id(name == "contradictory" ? "contradiction" : name);
  if (id == kNoLabel)
    row.fail(BadRow::kUnknownLabel, "unknown label '" + std::string(name) + "' (expected " +
                                        join(labels.names, ", ") + " or '-')");
  row.ex.label = id;
}

// Hugging Face labels: integer ids 0..2 (-1 = unlabelled, as in HF test splits) or names.
void set_label_from_hf(RowResult& row, std::string_view text, const LabelSet& labels) {
  if (text.empty() || text == "-1") return;
  if (text.size() == 1 && text[0] >= '0' && text[0] < '0' + labels.size()) {
    row.ex.label = text[0] - '0';
    return;
  }
  int id = labels.id(text);
  if (id == kNoLabel)
    row.fail(BadRow::kUnknownLabel, "unknown label '" + std::string(text) + "' (expected 0.." +
                                        std::to_string(labels.size() - 1) +
                                        ", -1 or a name: " + join(labels.names, ", ") + ")");
  row.ex.label = id;
}

void check_texts(RowResult& row) {
  if (row.bad) return;
  if (is_blank_text(row.ex.premise))
    row.fail(BadRow::kEmptyText, "empty premise");
  else if (is_blank_text(row.ex.hypothesis))
    row.fail(BadRow::kEmptyText, "empty hypothesis");
}

// Column positions in a header, by name; -1 when absent.
struct Columns {
  int premise = -1, hypothesis = -1, label = -1, language = -1, genre = -1, pair_id = -1;
  size_t count = 0;
};

int find_column(const std::vector<std::string>& header, std::string_view name) {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

Columns xnli_columns(const std::vector<std::string>& header) {
  Columns c;
  c.premise = find_column(header, "sentence1");
  c.hypothesis = find_column(header, "sentence2");
  c.label = find_column(header, "gold_label");
  c.language = find_column(header, "language");
  c.genre = find_column(header, "genre");
  c.pair_id = find_column(header, "pairID");
  c.count = header.size();
  return c;
}

Columns hf_columns(const std::vector<std::string>& header) {
  Columns c;
  c.premise = find_column(header, "premise");
  c.hypothesis = find_column(header, "hypothesis");
  c.label = find_column(header, "label");
  c.language = find_column(header, "language");
  c.genre = find_column(header, "genre");
  c.pair_id = find_column(header, "pairID");
  c.count = header.size();
  return c;
}

std::string field_or_empty(const std::vector<std::string>& f, int col) {
  return col >= 0 ? f[static_cast<size_t>(col)] : std::string();
}

// The row's language, when its column can be trusted. In a row with the wrong number of columns
// a stray (or missing) separator has moved the fields on one side of it: the language is known
// when only label, genre and pairID columns lie before it (XNLI-1.0 has it first), or, counted
// from the row's end, when only such columns lie after it (an HF CSV with the language last).
// Otherwise a moved text such as "neutral" would pass as a language code and the row would be
// counted as another language's, silently, instead of as a bad row of its own language.
void read_language(RowResult& row, const std::vector<std::string>& fields, const Columns& c) {
  if (c.language < 0) return;
  const auto lang = static_cast<size_t>(c.language);
  auto structured = [&c](size_t j) {
    const auto k = static_cast<int>(j);
    return k == c.label || k == c.genre || k == c.pair_id;
  };
  size_t at = lang;
  if (fields.size() != c.count) {
    bool before = true, after = true;
    for (size_t j = 0; j < lang; ++j) before = before && structured(j);
    for (size_t j = lang + 1; j < c.count; ++j) after = after && structured(j);
    if (!before) {
      if (!after || fields.size() < c.count - lang) return;
      at = fields.size() - (c.count - lang);
    }
  }
  if (at >= fields.size()) return;
  row.lang_known = true;
  row.lang = fields[at];
}

// Rows of a header-named table (xnli-tsv, hf-csv) once the column count is right.
void fill_from_columns(RowResult& row, const std::vector<std::string>& f, const Columns& c,
                       bool hf_labels, const LabelSet& labels) {
  row.ex.premise = f[static_cast<size_t>(c.premise)];
  row.ex.hypothesis = f[static_cast<size_t>(c.hypothesis)];
  row.ex.genre = field_or_empty(f, c.genre);
  row.ex.pair_id = field_or_empty(f, c.pair_id);
  if (c.label >= 0) {
    if (hf_labels)
      set_label_from_hf(row, f[static_cast<size_t>(c.label)], labels);
    else
      set_label_from_name(row, f[static_cast<size_t>(c.label)], labels);
  }
}

std::string json_type_name(const nlohmann::json& j) {
  return j.type_name();
}

// Optional string member; a non-string value is a malformed row.
bool json_string(RowResult& row, const nlohmann::json& obj, const char* key, std::string& out,
                 bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) row.fail(BadRow::kMalformed, std::string("missing field \"") + key + "\"");
    return false;
  }
  if (it->is_string()) {
    out = it->get<std::string>();
    return true;
  }
  if (!required && it->is_number_integer()) {  // pairID is sometimes numeric
    out = std::to_string(it->get<int64_t>());
    return true;
  }
  row.fail(BadRow::kMalformed, std::string("field \"") + key + "\" is a " + json_type_name(*it) +
                                   ", expected a string");
  return false;
}

RowResult parse_json_row(const nlohmann::json& obj, bool mnli, const LabelSet& labels) {
  RowResult row;
  if (!obj.is_object()) {
    row.fail(BadRow::kMalformed, "expected a JSON object, found a " + json_type_name(obj));
    return row;
  }
  std::string lang;
  if (json_string(row, obj, "language", lang, false)) {
    row.lang_known = true;
    row.lang = lang;
  }
  if (row.bad) return row;
  json_string(row, obj, mnli ? "sentence1" : "premise", row.ex.premise, true) &&
      json_string(row, obj, mnli ? "sentence2" : "hypothesis", row.ex.hypothesis, true);
  if (row.bad) return row;
  json_string(row, obj, "genre", row.ex.genre, false);
  json_string(row, obj, "pairID", row.ex.pair_id, false);
  if (row.bad) return row;
  if (mnli) {
    std::string gold;
    if (json_string(row, obj, "gold_label", gold, false)) set_label_from_name(row, gold, labels);
  } else if (auto it = obj.find("label"); it != obj.end() && !it->is_null()) {
    if (it->is_number_integer()) {
      // An unsigned value above INT64_MAX would wrap to a negative one (-1: unlabelled).
      const bool huge =
          it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX);
      const int64_t v = huge ? INT64_MAX : it->get<int64_t>();
      if (v >= 0 && v < labels.size())
        row.ex.label = static_cast<int>(v);
      else if (v != -1)
        row.fail(BadRow::kUnknownLabel, "unknown label " + it->dump() + " (expected 0.." +
                                            std::to_string(labels.size() - 1) + " or -1)");
    } else if (it->is_string()) {
      set_label_from_hf(row, it->get<std::string>(), labels);
    } else {
      row.fail(BadRow::kMalformed,
               "field \"label\" is a " + json_type_name(*it) + ", expected an integer");
    }
  }
  return row;
}

// Splits a file into lines (LF or CRLF), skipping a UTF-8 BOM.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
  }
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    size_t nl = text_.find('\n', pos_);
    size_t end = nl == std::string_view::npos ? text_.size() : nl;
    line = text_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = nl == std::string_view::npos ? text_.size() : nl + 1;
    ++line_;
    return true;
  }
  int64_t line() const { return line_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int64_t line_ = 0;
};

// Collects rows into per-language datasets and applies the error policy.
class Collector {
 public:
  Collector(std::string path, NliFormat format, const ReadOptions& options,
            std::vector<std::string> wanted, std::string tag)
      : path_(std::move(path)),
        format_(format),
        options_(options),
        wanted_(std::move(wanted)),
        tag_(std::move(tag)) {}

  // The file has a language column: rows are assigned by it (else all go to `tag`).
  void set_by_column(bool by_column) {
    if (!by_column && require_column_)
      throw DataError(path_ + ": has no language column (format " +
                      std::string(nli_format_name(format_)) +
                      "); give it as LANG=PATH for a single-language file");
    by_column_ = by_column;
  }
  // Reading by language: a file without a language column is an error.
  void require_language_column() { require_column_ = true; }
  bool by_column() const { return by_column_; }

  std::string where(int64_t line) const { return path_ + ":" + std::to_string(line); }

  // A whole-file problem (bad header): never skippable.
  [[noreturn]] void fatal(int64_t line, const std::string& message) const {
    throw DataError(where(line) + ": " + message);
  }

  void add(RowResult row, int64_t line) {
    const int64_t index = records_++;
    if (row.lang_known && !is_language_code(row.lang)) {
      // An empty or garbled value would otherwise become a language of its own.
      const std::string what = row.lang.empty()
                                   ? std::string("missing language (empty 'language' value)")
                                   : "language '" + row.lang +
                                         "' is not a language code (1-16 letters, digits, '_' "
                                         "or '-', starting with a letter)";
      row.lang_known = false;
      if (!row.bad) row.fail(BadRow::kMalformed, what);
    }
    if (!by_column_ && row.lang_known && row.lang != tag_ && !row.bad) {
      // A JSONL file is split by language when its first object has "language"; a later
      // object that names another language must not be counted as this one.
      row.fail(BadRow::kMalformed,
               "language '" + row.lang + "', but the file is read as '" + tag_ +
                   "' (its first object has no \"language\" key: give every object one, or "
                   "none)");
    }
    if (by_column_ && row.lang_known) {
      languages_seen_.insert(row.lang);
      if (!wanted_.empty() &&
          std::find(wanted_.begin(), wanted_.end(), row.lang) == wanted_.end()) {
        ++other_language_;
        return;
      }
    }
    if (by_column_ && !row.lang_known && !row.bad) {
      row.fail(BadRow::kMalformed, "missing language");
    }
    if (!row.bad) check_texts(row);
    NliDataset* target = nullptr;
    if (!by_column_)
      target = &dataset(tag_);
    else if (row.lang_known)
      target = &dataset(row.lang);
    if (row.bad) {
      bad(target, line, row.reason, row.detail, !row.no_gold);
      return;
    }
    if (row.no_gold) {
      ++target->report.no_gold_label;
      return;
    }
    row.ex.index = index;
    row.ex.line = line;
    row.ex.lang = by_column_ ? row.lang : tag_;
    target->examples.push_back(std::move(row.ex));
  }

  // `placed`: the row is one of its language's positions for sampling (not a "-" row, which
  // is no position in any language).
  void bad(NliDataset* target, int64_t line, BadRow reason, const std::string& detail,
           bool placed = true) {
    std::string message = where(line) + ": " + detail;
    if (!options_.skip_bad_rows) throw DataError(message);
    // A row whose language is unknown counts against every language read from the file.
    auto count = [&](ReadReport& r) {
      ++r.bad_rows[std::string(bad_row_code(reason))];
      if (static_cast<int>(r.bad_row_messages.size()) < options_.max_messages)
        r.bad_row_messages.push_back(message);
    };
    if (target) {
      count(target->report);
      if (placed) {
        target->bad_positions.push_back(target->size() +
                                        static_cast<int64_t>(target->bad_positions.size()));
      }
    } else {
      unattributed_.push_back({reason, message});
    }
  }

  // The datasets in the requested order, with reports completed; enforces non-empty results.
  std::vector<NliDataset> finish() {
    std::vector<std::string> order = wanted_;
    if (!by_column_) {
      order = {tag_};
      dataset(tag_);
    } else if (order.empty()) {
      order = first_seen_;
    }
    if (by_column_) {
      std::vector<std::string> missing;
      for (const auto& l : order)
        if (!languages_seen_.count(l)) missing.push_back(l);
      if (!missing.empty()) {
        std::vector<std::string> present(languages_seen_.begin(), languages_seen_.end());
        throw DataError(path_ + ": language" + (missing.size() > 1 ? "s " : " ") + join(missing) +
                        " not found in the 'language' column (languages present: " +
                        (present.empty() ? std::string("none") : join(present)) + ")");
      }
    }
    // Counted before any dataset is moved out below.
    std::map<std::string, int64_t> other;
    for (const auto& l : order) other[l] = other_language_ + records_of_other_wanted(l);
    std::vector<NliDataset> out;
    for (const auto& l : order) {
      NliDataset& d = dataset(l);
      d.report.path = path_;
      d.report.format = format_;
      d.report.records = records_;
      d.report.other_language = other[l];
      d.report.bad_without_language = static_cast<int64_t>(unattributed_.size());
      for (const auto& [reason, message] : unattributed_) {
        ++d.report.bad_rows[std::string(bad_row_code(reason))];
        if (static_cast<int>(d.report.bad_row_messages.size()) < options_.max_messages)
          d.report.bad_row_messages.push_back(message);
      }
      d.report.kept = d.size();
      if (d.examples.empty()) {
        throw DataError(path_ + ": no usable rows" +
                        (by_column_ ? " for language '" + l + "'" : std::string()) + " (" +
                        std::to_string(records_) + " records; " + d.report.summary() + ")");
      }
      out.push_back(std::move(d));
    }
    return out;
  }

 private:
  NliDataset& dataset(const std::string& lang) {
    auto it = sets_.find(lang);
    if (it != sets_.end()) return it->second;
    first_seen_.push_back(lang);
    NliDataset& d = sets_[lang];
    d.lang = lang;
    d.source = path_;
    d.format = format_;
    return d;
  }

  // Rows kept for (or rejected in) other requested languages also count as "other language"
  // from the point of view of one language's report.
  int64_t records_of_other_wanted(const std::string& lang) const {
    int64_t n = 0;
    for (const auto& [l, d] : sets_) {
      if (l == lang) continue;
      n += d.size() + d.report.no_gold_label + d.report.bad_total();
    }
    return n;
  }

  std::string path_;
  NliFormat format_;
  ReadOptions options_;
  std::vector<std::string> wanted_;
  std::string tag_;
  bool by_column_ = false;
  bool require_column_ = false;
  int64_t records_ = 0;
  int64_t other_language_ = 0;
  std::map<std::string, NliDataset> sets_;
  std::vector<std::string> first_seen_;
  std::set<std::string> languages_seen_;
  std::vector<std::pair<BadRow, std::string>> unattributed_;
};

std::string utf8_detail(std::string_view raw, size_t at) {
  return "invalid UTF-8 at byte " + std::to_string(at + 1) + " of the row (" +
         std::to_string(raw.size()) + " bytes)";
}

void read_xnli_tsv(std::string_view text, Collector& out, const LabelSet& labels) {
  LineReader lines(text);
  std::string_view line;
  Columns c;
  bool have_header = false;
  while (lines.next(line)) {
    if (line.empty()) continue;
    auto fields = split_tabs(line);
    if (!have_header) {
      c = xnli_columns(fields);
      if (c.premise < 0 || c.hypothesis < 0 || c.label < 0)
        out.fatal(lines.line(),
                  "not an XNLI-1.0/MultiNLI TSV header: expected tab-separated columns "
                  "gold_label, sentence1, sentence2 (found: " +
                      join(fields) + ")");
      out.set_by_column(c.language >= 0);
      have_header = true;
      continue;
    }
    RowResult row;
    read_language(row, fields, c);
    if (fields.size() != c.count) {
      row.fail(BadRow::kColumnCount, "expected " + std::to_string(c.count) +
                                         " tab-separated columns (as in the header), found " +
                                         std::to_string(fields.size()));
    } else if (size_t at = find_invalid_utf8(line); at != std::string_view::npos) {
      row.fail(BadRow::kInvalidUtf8, utf8_detail(line, at));
    } else {
      fill_from_columns(row, fields, c, false, labels);
    }
    out.add(std::move(row), lines.line());
  }
  if (!have_header)
    out.fatal(1,
              "empty file: expected a header with gold_label, sentence1, "
              "sentence2");
}

void read_xtreme_tsv(std::string_view text, Collector& out, const LabelSet& labels) {
  LineReader lines(text);
  std::string_view line;
  size_t columns = 0;  // fixed by the first data row: 2 (unlabelled) or 3
  bool first = true;
  while (lines.next(line)) {
    if (line.empty()) continue;
    auto fields = split_tabs(line);
    if (first) {
      first = false;
      // Some exports add a header; accept the obvious ones rather than failing on 'label'.
      if (fields.size() >= 2 && fields[0] == "premise" && fields[1] == "hypothesis" &&
          (fields.size() == 2 || (fields.size() == 3 && fields[2] == "label"))) {
        columns = fields.size();
        continue;
      }
    }
    if (columns == 0 && (fields.size() == 2 || fields.size() == 3)) columns = fields.size();
    RowResult row;
    if (columns == 0 || fields.size() != columns) {
      row.fail(BadRow::kColumnCount,
               "expected " +
                   (columns ? std::to_string(columns) + " tab-separated columns (as on the first "
                                                        "row)"
                            : std::string("2 or 3 tab-separated columns")) +
                   " (premise, hypothesis[, label]), found " + std::to_string(fields.size()));
    } else if (size_t at = find_invalid_utf8(line); at != std::string_view::npos) {
      row.fail(BadRow::kInvalidUtf8, utf8_detail(line, at));
    } else {
      row.ex.premise = fields[0];
      row.ex.hypothesis = fields[1];
      if (columns == 3) {
        if (fields[2].empty())
          row.fail(BadRow::kUnknownLabel, "empty label (expected " + join(labels.names) + ")");
        else
          set_label_from_name(row, fields[2], labels);
      }
    }
    out.add(std::move(row), lines.line());
  }
}

void read_jsonl(std::string_view text, Collector& out, bool mnli, const LabelSet& labels) {
  LineReader lines(text);
  std::string_view line;
  // Whether rows are split by language is decided by the first line that is a JSON object.
  for (LineReader scan(text); scan.next(line);) {
    if (is_blank_text(line)) continue;
    auto obj = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (obj.is_object()) {
      out.set_by_column(obj.contains("language"));
      break;
    }
  }
  while (lines.next(line)) {
    if (is_blank_text(line)) continue;
    RowResult row;
    if (size_t at = find_invalid_utf8(line); at != std::string_view::npos) {
      row.fail(BadRow::kInvalidUtf8, utf8_detail(line, at));
    } else {
      nlohmann::json obj = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (obj.is_discarded()) {
        row.fail(BadRow::kMalformed, "invalid JSON");
      } else {
        row = parse_json_row(obj, mnli, labels);
      }
    }
    out.add(std::move(row), lines.line());
  }
}

void read_hf_csv(std::string_view text, Collector& out, const LabelSet& labels) {
  CsvReader csv(text);
  std::vector<std::string> fields;
  Columns c;
  bool have_header = false;
  for (;;) {
    auto status = csv.next(fields);
    if (status == CsvReader::Status::kEnd) break;
    if (status == CsvReader::Status::kOk && csv.blank()) continue;
    if (!have_header) {
      if (status == CsvReader::Status::kError) out.fatal(csv.line(), csv.error());
      c = hf_columns(fields);
      if (c.premise < 0 || c.hypothesis < 0)
        out.fatal(csv.line(),
                  "not a Hugging Face NLI CSV: expected a header with columns premise, "
                  "hypothesis, label (found: " +
                      join(fields) + ")");
      out.set_by_column(c.language >= 0);
      have_header = true;
      continue;
    }
    RowResult row;
    if (status == CsvReader::Status::kError) {
      // An unterminated quote swallows the rest of the file: nothing after it can be trusted.
      if (csv.error().rfind("unterminated", 0) == 0) out.fatal(csv.line(), csv.error());
      row.fail(BadRow::kMalformed, "bad CSV quoting: " + csv.error());
    } else {
      read_language(row, fields, c);
      if (fields.size() != c.count) {
        row.fail(BadRow::kColumnCount, "expected " + std::to_string(c.count) +
                                           " comma-separated columns (as in the header), found " +
                                           std::to_string(fields.size()));
      } else if (size_t at = find_invalid_utf8(csv.raw()); at != std::string_view::npos) {
        row.fail(BadRow::kInvalidUtf8, utf8_detail(csv.raw(), at));
      } else {
        fill_from_columns(row, fields, c, true, labels);
      }
    }
    out.add(std::move(row), csv.line());
  }
  if (!have_header) out.fatal(1, "empty file: expected a header with premise, hypothesis, label");
}

// The start of a file: enough for format detection and headers without reading a large file
// (MultiNLI train is ~400 MB as JSONL) several times.
std::string read_head(const fs::path& path) {
  constexpr std::streamsize kHeadBytes = 1 << 20;
  std::ifstream in(path, std::ios::binary);
  if (!in) return read_file(path);  // throws IoError with the OS reason
  std::string head(static_cast<size_t>(kHeadBytes), '\0');
  in.read(head.data(), kHeadBytes);
  head.resize(static_cast<size_t>(in.gcount()));
  return head;
}

NliFormat detect_from_text(std::string_view text, const fs::path& path) {
  LineReader lines(text);
  std::string_view line;
  while (lines.next(line) && is_blank_text(line)) {
  }
  size_t first = line.find_first_not_of(" \t");
  if (first != std::string_view::npos && line[first] == '{') {
    auto obj = nlohmann::json::parse(line, nullptr, false);
    if (obj.is_object() && obj.contains("sentence1")) return NliFormat::kMnliJsonl;
    if (obj.is_object() && obj.contains("premise")) return NliFormat::kHfJsonl;
    if (obj.is_discarded()) {
      // Named as what it is: a broken first line is not a file "without NLI fields".
      std::string why;
      try {
        const auto reparsed = nlohmann::json::parse(line);
        why = reparsed.is_discarded() ? "" : why;
      } catch (const nlohmann::json::parse_error& e) {
        why = " (byte " + std::to_string(e.byte) + ")";
      }
      throw DataError(path.string() + ":" + std::to_string(lines.line()) + ": invalid JSON" + why +
                      ": expected one JSON object per line");
    }
    throw DataError(path.string() + ":" + std::to_string(lines.line()) +
                    ": JSON Lines file without NLI fields: expected \"premise\", \"hypothesis\", "
                    "\"label\" (Hugging Face) or \"sentence1\", \"sentence2\", \"gold_label\" "
                    "(MultiNLI)");
  }
  auto fields = split_tabs(line);
  if (find_column(fields, "gold_label") >= 0 && find_column(fields, "sentence1") >= 0)
    return NliFormat::kXnliTsv;
  const std::string ext = ascii_lower(path.extension().string());
  if (ext == ".csv") return NliFormat::kHfCsv;
  if (ext == ".jsonl" || ext == ".json")
    throw DataError(path.string() + ":" + std::to_string(lines.line()) +
                    ": expected JSON Lines (one {...} object per line)");
  return NliFormat::kXtremeTsv;
}

std::vector<NliDataset> read_any(const fs::path& path, const ReadOptions& options,
                                 std::vector<std::string> wanted, std::string tag,
                                 bool require_language_column) {
  const std::string text = read_file(path);
  NliFormat format =
      options.format == NliFormat::kAuto ? detect_from_text(text, path) : options.format;
  Collector out(path.string(), format, options, std::move(wanted), std::move(tag));
  if (require_language_column) out.require_language_column();
  if (format == NliFormat::kXtremeTsv) out.set_by_column(false);
  const LabelSet labels = LabelSet::nli();
  switch (format) {
    case NliFormat::kXnliTsv:
      read_xnli_tsv(text, out, labels);
      break;
    case NliFormat::kXtremeTsv:
      read_xtreme_tsv(text, out, labels);
      break;
    case NliFormat::kMnliJsonl:
      read_jsonl(text, out, true, labels);
      break;
    case NliFormat::kHfJsonl:
      read_jsonl(text, out, false, labels);
      break;
    case NliFormat::kHfCsv:
      read_hf_csv(text, out, labels);
      break;
    case NliFormat::kAuto:
      break;
  }
  return out.finish();
}

}  // namespace

NliFormat detect_nli_format(const fs::path& path) {
  return detect_from_text(read_head(path), path);
}

bool has_language_column(const fs::path& path, NliFormat format) {
  const std::string text = read_head(path);
  if (format == NliFormat::kAuto) format = detect_from_text(text, path);
  LineReader lines(text);
  std::string_view line;
  while (lines.next(line) && is_blank_text(line)) {
  }
  switch (format) {
    case NliFormat::kXnliTsv:
      return find_column(split_tabs(line), "language") >= 0;
    case NliFormat::kMnliJsonl:
    case NliFormat::kHfJsonl: {
      auto obj = nlohmann::json::parse(line, nullptr, false);
      return obj.is_object() && obj.contains("language");
    }
    case NliFormat::kHfCsv: {
      CsvReader csv(text);
      std::vector<std::string> header;
      return csv.next(header) == CsvReader::Status::kOk && find_column(header, "language") >= 0;
    }
    default:
      return false;
  }
}

NliDataset read_nli_file(const fs::path& path, const std::string& lang,
                         const ReadOptions& options) {
  // A language-column file read for one language keeps only that language's rows; any other
  // file is tagged with `lang` as a whole.
  auto sets = read_any(path, options, {lang}, lang, false);
  return std::move(sets.front());
}

std::vector<NliDataset> read_nli_by_language(const fs::path& path,
                                             const std::vector<std::string>& langs,
                                             const ReadOptions& options) {
  return read_any(path, options, langs, "", true);
}

bool is_blank_text(std::string_view s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) return false;  // invalid UTF-8 is reported elsewhere, not as blank
    const bool ascii_space =
        cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v';
    const auto cat = utf8proc_category(cp);
    if (!ascii_space && cp != 0x85 && cat != UTF8PROC_CATEGORY_ZS && cat != UTF8PROC_CATEGORY_ZL &&
        cat != UTF8PROC_CATEGORY_ZP) {
      return false;
    }
    p += n;
    left -= n;
  }
  return true;
}

}  // namespace xlt::data
