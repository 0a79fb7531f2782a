// Natural-language-inference data: the example and dataset types every command shares, and
// readers for the file layouts researchers have (see docs/data.md for the exact formats):
//
//   xnli-tsv    XNLI-1.0 xnli.{dev,test}.tsv (and MultiNLI 1.0 .txt): tab-separated with a header;
//               columns located by name: gold_label, sentence1, sentence2, [language], [genre],
//               [pairID]. No quoting (as Hugging Face reads it: csv.QUOTE_NONE).
//   xtreme-tsv  XTREME layout: premise \t hypothesis [\t label], no header, string labels.
//   mnli-jsonl  MultiNLI 1.0 JSON Lines: gold_label, sentence1, sentence2, [genre], [pairID].
//   hf-jsonl    Hugging Face export: premise, hypothesis, [label] with label 0/1/2 (-1 = none).
//   hf-csv      Hugging Face export as RFC-4180 CSV with a header naming the same columns.
//
// Labels are normalised to the Hugging Face convention entailment 0, neutral 1, contradiction 2;
// kNoLabel (-1) marks an unlabelled example (e.g. XTREME test files). Rows whose gold label is
// "-" (no annotator consensus in MultiNLI/XNLI-1.0) are skipped and counted, never an error.
//
// Usage:
//   xlt::data::ReadOptions opts;           // format auto-detected
//   auto ds = xlt::data::read_nli_file("dev-es.tsv", "es", opts);
//   for (auto& ex : ds.examples) ... ex.premise, ex.hypothesis, ex.label, ex.index
//
// All functions are reentrant; datasets are plain values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace xlt::data {

inline constexpr int kNoLabel = -1;

enum class NliFormat { kAuto, kXnliTsv, kXtremeTsv, kMnliJsonl, kHfJsonl, kHfCsv };

// "auto", "xnli-tsv" (alias "xnli"), "xtreme-tsv" ("xtreme"), "mnli-jsonl" ("mnli"), "hf-jsonl",
// "hf-csv". Throws UsageError listing the accepted names.
NliFormat parse_nli_format(std::string_view name);
// The canonical name ("xnli-tsv", ...).
std::string_view nli_format_name(NliFormat format);
// All accepted canonical names, for help text.
const std::vector<std::string>& nli_format_names();

// Guesses the layout from the file's content (first line) and extension:
//   first non-blank line starts with '{'                -> mnli-jsonl if it has "sentence1",
//                                                          else hf-jsonl
//   first line, split on tabs, has gold_label/sentence1  -> xnli-tsv
//   extension .csv                                       -> hf-csv
//   otherwise                                            -> xtreme-tsv
// Throws IoError when the file cannot be read.
NliFormat detect_nli_format(const std::filesystem::path& path);

// Label ids by name; the id is the position in `names`.
struct LabelSet {
  std::vector<std::string> names;

  // {"entailment", "neutral", "contradiction"} (Hugging Face xnli / multi_nli order).
  static LabelSet nli();
  int size() const { return static_cast<int>(names.size()); }
  // Id for a name, or kNoLabel when unknown. Case-sensitive.
  int id(std::string_view name) const;
  // Name for an id; "-" for kNoLabel. Throws std::out_of_range for other bad ids.
  const std::string& name(int id) const;
};

struct NliExample {
  std::string premise;
  std::string hypothesis;
  int label = kNoLabel;  // 0 entailment, 1 neutral, 2 contradiction, kNoLabel unlabelled
  std::string lang;
  // 0-based data record in the source file: header and blank lines excluded, skipped rows
  // (bad rows, "-" labels, other languages) included, so an index always names the same record
  // of the file whatever was filtered. In XTREME files row i is parallel across languages.
  int64_t index = 0;
  int64_t line = 0;     // 1-based physical line where the record starts (for messages)
  std::string genre;    // MultiNLI/XNLI-1.0 genre when the file has one, else empty
  std::string pair_id;  // XNLI-1.0/MultiNLI pairID when present (shared by translations)
};

// Why a row was rejected. Codes are stable (they appear in reports and JSON).
enum class BadRow {
  kColumnCount,   // "column_count": wrong number of tab/CSV columns
  kUnknownLabel,  // "unknown_label": label not in the label set (and not "-"/-1)
  kInvalidUtf8,   // "invalid_utf8"
  kEmptyText,     // "empty_text": premise or hypothesis empty or only whitespace
  kMalformed,     // "malformed": invalid JSON, bad CSV quoting, missing field, wrong JSON type
};
std::string_view bad_row_code(BadRow reason);

// What happened while reading one file (for one language when the file has a language column).
struct ReadReport {
  std::string path;
  NliFormat format = NliFormat::kAuto;
  int64_t records = 0;         // data records seen (header and blank lines excluded)
  int64_t kept = 0;            // examples returned
  int64_t no_gold_label = 0;   // gold label "-": skipped by design, never an error
  int64_t other_language = 0;  // rows of languages not asked for (language-column files)
  std::map<std::string, int64_t> bad_rows;  // bad_row_code -> count (only with skip_bad_rows)
  // Of those, rows whose language could not be read (counted for every language of the file).
  int64_t bad_without_language = 0;
  std::vector<std::string> bad_row_messages;  // the first few "file:line: reason" messages

  int64_t bad_total() const;
  // One line for stderr, e.g. "dev-en.tsv: 2490 examples (2 bad rows skipped: empty_text 2)".
  std::string summary() const;
};

struct NliDataset {
  std::string lang;
  std::string source;  // the path it was read from
  NliFormat format = NliFormat::kAuto;
  LabelSet labels = LabelSet::nli();
  std::vector<NliExample> examples;
  ReadReport report;
  // Where this language's skipped bad rows were, counted in the sequence of its kept and bad
  // rows together (kept example i has position i + the number of bad positions before it).
  // Only bad rows whose language was known; "-" labels are not positions (they are the same
  // rows in every language of a parallel file). Lets a sample of parallel sets stay aligned
  // after --skip-bad-rows (subsample of several datasets); empty once sampled.
  std::vector<int64_t> bad_positions;

  int64_t size() const { return static_cast<int64_t>(examples.size()); }
  // True when every example has a label (needed for evaluation and training).
  bool fully_labelled() const;
  // Gold labels in example order (kNoLabel where missing).
  std::vector<int> gold() const;
  // Examples per label id (size labels.size()); unlabelled examples are not counted.
  std::vector<int64_t> label_counts() const;
};

struct ReadOptions {
  NliFormat format = NliFormat::kAuto;
  // Count bad rows in ReadReport instead of stopping at the first with "file:line: reason".
  bool skip_bad_rows = false;
  // How many bad-row messages ReadReport keeps.
  int max_messages = 5;
};

// Reads a single-language file and tags every example with `lang`. For a file with a language
// column (XNLI-1.0), keeps only rows whose language is `lang` (DataError if there are none).
// Throws IoError (unreadable), DataError ("file:line: reason" for a bad row unless
// skip_bad_rows; missing header columns; zero usable rows).
NliDataset read_nli_file(const std::filesystem::path& path, const std::string& lang,
                         const ReadOptions& options = {});

// Reads a file with a language column once and splits it by language, in the order of `langs`
// (empty: every language in the file, in order of first appearance). DataError when the file has
// no language column, or when a requested language does not occur (the message lists those
// present).
std::vector<NliDataset> read_nli_by_language(const std::filesystem::path& path,
                                             const std::vector<std::string>& langs,
                                             const ReadOptions& options = {});

// True when the format/header of `path` has a language column (XNLI-1.0 TSV with "language").
bool has_language_column(const std::filesystem::path& path, NliFormat format = NliFormat::kAuto);

// Validates UTF-8 (no overlongs, surrogates or code points above U+10FFFF). Returns the byte
// offset of the first invalid sequence, or npos when valid.
size_t find_invalid_utf8(std::string_view s);

// The first `max_lines` lines of a text file (all when negative), "\r\n" read as "\n", each
// checked to be UTF-8 here, where the file and line are known (a tokenizer would only know a byte
// offset into one sentence): DataError "FILE:LINE: invalid UTF-8 at byte B of the line (byte
// 0xXX); ...". IoError for a folder or an unreadable file. A leading UTF-8 byte-order mark is
// dropped.
std::vector<std::string> read_utf8_lines(const std::filesystem::path& path, int64_t max_lines = -1);

// Empty, or only Unicode whitespace (ASCII's, NBSP and the other space separators, the line and
// paragraph separators, NEL): a text that tokenises to nothing. False for invalid UTF-8.
bool is_blank_text(std::string_view s);

}  // namespace xlt::data
