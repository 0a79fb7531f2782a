// Reading sentences for the analysis commands (no libtorch):
//   - parallel sentences, row i of every language translating each other, from a TSV whose
//     header row names the languages (`en\tes\tfr\thi`, one column per language), or from
//     several line-aligned files, one per language (Tatoeba/LASER layout:
//     `--input en=tatoeba.fra-eng.eng --input fr=tatoeba.fra-eng.fra`);
//   - a sentence list for `xlt embed`: plain text, one sentence per line, or a TSV with a header
//     row that has a `sentence` column and optionally a `lang` column (other columns are kept as
//     metadata).
// Every format error is a DataError naming file:line and what was expected. A trailing CR is
// dropped from every line; files must be UTF-8 (not checked here; the tokenizer checks).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace xlt::analysis {

struct ParallelText {
  std::vector<std::string> langs;                 // column order
  std::vector<std::vector<std::string>> columns;  // [lang][row], all the same length
  std::vector<std::string> sources;               // where each language came from (for logs)
  // Rows left out because a kept language's sentence was blank: an empty "translation" would be
  // embedded as the special tokens alone and counted in every retrieval score.
  int64_t blank_rows = 0;

  size_t rows() const { return columns.empty() ? 0 : columns.front().size(); }
};

struct ParallelReadOptions {
  // Languages to keep, in this order; empty = all. A language asked for but absent is a
  // DataError unless `ignore_missing` (the study passes its language list and keeps the
  // languages the file has).
  std::vector<std::string> langs;
  bool ignore_missing = false;
  int64_t max_rows = -1;  // < 0 = all rows
  size_t min_langs = 2;   // fewer languages left is a DataError
};

// A TSV whose header row names the languages. Blank lines are skipped; every other row must
// have exactly as many tab-separated fields as the header. Duplicate or empty language names in
// the header are errors.
ParallelText read_parallel_tsv(const std::filesystem::path& path,
                               const ParallelReadOptions& options = {});

// Line-aligned files, one per language ({lang, path} in column order). Line i of every file is
// one row; blank lines are kept (they still hold a place). Files of different line counts are a
// DataError naming the shorter file and the line where it ended.
ParallelText read_parallel_files(
    const std::vector<std::pair<std::string, std::filesystem::path>>& files,
    const ParallelReadOptions& options = {});

// "LANG=PATH" -> {LANG, PATH}; "PATH" -> {"", PATH}. A '=' counts only when what precedes it
// looks like a language code (letters, digits, '-', '_', at most 16 characters), so paths with
// '=' in them still work.
std::pair<std::string, std::filesystem::path> split_lang_path(const std::string& spec);

// --input arguments of `xlt align`: one spec without a language = a language-header TSV; two or
// more LANG=PATH specs = line-aligned files. Anything else is a UsageError.
ParallelText read_parallel_inputs(const std::vector<std::string>& specs,
                                  const ParallelReadOptions& options = {});

// One sentence to embed, with where it came from.
struct SentenceRecord {
  std::string sentence;
  std::string lang;                // "" when unknown
  std::string source;              // file name
  int64_t line = 0;                // 1-based line in that file
  std::vector<std::string> extra;  // values of SentenceList::extra_columns
};

struct SentenceList {
  std::vector<SentenceRecord> records;
  std::vector<std::string> extra_columns;  // header columns other than sentence/lang (TSV input)
};

// Reads one sentence file. If the first line, split on tabs, has a field `sentence`, the file is
// a TSV with that header (optional `lang` column; other columns kept as extra metadata: inputs
// of one call that have extra columns must have the same ones, those without get empty values;
// index/source/line/tokens are refused as extra columns); otherwise every line is one
// sentence (blank lines skipped; a line with a tab is a DataError: a TSV without a `sentence`
// column). `lang` is used when the file has no `lang` column.
void read_sentence_file(const std::filesystem::path& path, const std::string& lang,
                        SentenceList& into);

// All of `specs` ("PATH" or "LANG=PATH") in order. Throws DataError when nothing was read.
SentenceList read_sentence_inputs(const std::vector<std::string>& specs);

}  // namespace xlt::analysis
