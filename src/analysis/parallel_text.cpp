// Parallel-sentence and sentence-list readers for the analysis commands (see parallel_text.h).
#include "xlt/analysis/parallel_text.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/data/nli.h"

namespace xlt::analysis {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> split_tabs(const std::string& s) {
  std::vector<std::string> f;
  size_t start = 0;
  while (true) {
    const size_t tab = s.find('\t', start);
    f.push_back(s.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return f;
}

std::string where(const fs::path& path, size_t line) {
  return path.string() + ":" + std::to_string(line) + ": ";
}

// Keeps options.langs (in that order) out of `all`; returns the column index of each kept one.
std::vector<size_t> select_langs(const std::vector<std::string>& all,
                                 const ParallelReadOptions& options, const std::string& what) {
  std::vector<size_t> pick;
  if (options.langs.empty()) {
    for (size_t i = 0; i < all.size(); ++i) pick.push_back(i);
  } else {
    for (const auto& l : options.langs) {
      auto it = std::find(all.begin(), all.end(), l);
      if (it != all.end()) {
        pick.push_back(static_cast<size_t>(it - all.begin()));
      } else if (!options.ignore_missing) {
        std::string have;
        for (const auto& a : all) have += (have.empty() ? "" : ", ") + a;
        throw DataError(what + ": no language '" + l + "' (it has " + have + ")");
      }
    }
  }
  if (pick.size() < options.min_langs) {
    throw DataError(what + ": needs at least " + std::to_string(options.min_langs) +
                    " languages, found " + std::to_string(pick.size()) +
                    (options.langs.empty() ? "" : " of those asked for"));
  }
  return pick;
}

bool looks_like_lang(const std::string& s) {
  if (s.empty() || s.size() > 16) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

}  // namespace

ParallelText read_parallel_tsv(const fs::path& path, const ParallelReadOptions& options) {
  const auto lines = data::read_utf8_lines(path);
  ParallelText p;
  std::vector<std::string> header;
  std::vector<size_t> pick;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.empty()) continue;
    auto fields = split_tabs(line);
    if (header.empty()) {
      std::set<std::string> seen;
      for (size_t c = 0; c < fields.size(); ++c) {
        if (fields[c].empty()) {
          throw DataError(where(path, i + 1) + "header column " + std::to_string(c + 1) +
                          " is empty; expected a language code per column (e.g. en\\tes\\tfr)");
        }
        if (!seen.insert(fields[c]).second) {
          throw DataError(where(path, i + 1) + "language '" + fields[c] +
                          "' appears twice in the header");
        }
      }
      header = fields;
      pick = select_langs(header, options, path.string());
      for (size_t c : pick) p.langs.push_back(header[c]);
      p.columns.resize(pick.size());
      p.sources.assign(pick.size(), path.string());
      continue;
    }
    if (fields.size() != header.size()) {
      throw DataError(where(path, i + 1) + std::to_string(fields.size()) +
                      " tab-separated fields, expected " + std::to_string(header.size()) +
                      " (one per language of the header)");
    }
    if (options.max_rows >= 0 && static_cast<int64_t>(p.rows()) >= options.max_rows) break;
    if (std::any_of(pick.begin(), pick.end(),
                    [&](size_t c) { return data::is_blank_text(fields[c]); })) {
      ++p.blank_rows;
      continue;
    }
    for (size_t k = 0; k < pick.size(); ++k) p.columns[k].push_back(fields[pick[k]]);
  }
  if (header.empty()) {
    throw DataError(path.string() + ": empty; expected a header row naming the languages");
  }
  return p;
}

ParallelText read_parallel_files(const std::vector<std::pair<std::string, fs::path>>& files,
                                 const ParallelReadOptions& options) {
  std::vector<std::string> all;
  std::set<std::string> seen;
  for (const auto& [lang, path] : files) {
    if (!seen.insert(lang).second) {
      throw DataError(path.string() + ": language '" + lang + "' given twice");
    }
    all.push_back(lang);
  }
  const auto pick = select_langs(all, options, "parallel input");
  ParallelText p;
  std::vector<std::vector<std::string>> lines;
  for (size_t k : pick) {
    p.langs.push_back(files[k].first);
    p.sources.push_back(files[k].second.string());
    // Blank lines stay: they hold the place of a row in line-aligned files.
    lines.push_back(data::read_utf8_lines(files[k].second));
  }
  for (size_t k = 1; k < lines.size(); ++k) {
    if (lines[k].size() != lines[0].size()) {
      const size_t shorter = lines[k].size() < lines[0].size() ? k : 0;
      const size_t longer = shorter == 0 ? k : 0;
      throw DataError(where(p.sources[shorter], lines[shorter].size() + 1) +
                      "file ends here, expected " + std::to_string(lines[longer].size()) +
                      " lines, one per line of " + p.sources[longer] +
                      " (line-aligned parallel files)");
    }
  }
  const size_t n = lines.empty() ? 0 : lines[0].size();
  p.columns.resize(lines.size());
  for (size_t i = 0; i < n; ++i) {
    if (options.max_rows >= 0 && static_cast<int64_t>(p.rows()) >= options.max_rows) break;
    // A blank line holds the place of its row; a row blank in any language is left out.
    if (std::any_of(lines.begin(), lines.end(),
                    [&](const auto& l) { return data::is_blank_text(l[i]); })) {
      ++p.blank_rows;
      continue;
    }
    for (size_t k = 0; k < lines.size(); ++k) p.columns[k].push_back(std::move(lines[k][i]));
  }
  return p;
}

std::pair<std::string, fs::path> split_lang_path(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq != std::string::npos && looks_like_lang(spec.substr(0, eq))) {
    return {spec.substr(0, eq), fs::path(spec.substr(eq + 1))};
  }
  return {"", fs::path(spec)};
}

ParallelText read_parallel_inputs(const std::vector<std::string>& specs,
                                  const ParallelReadOptions& options) {
  std::vector<std::pair<std::string, fs::path>> files;
  for (const auto& s : specs) files.push_back(split_lang_path(s));
  if (files.size() == 1 && files[0].first.empty())
    return read_parallel_tsv(files[0].second, options);
  for (const auto& [lang, path] : files) {
    if (lang.empty()) {
      throw UsageError("--input " + path.string() +
                       ": give either one TSV whose header names the languages, or LANG=FILE "
                       "for each line-aligned file");
    }
  }
  return read_parallel_files(files, options);
}

void read_sentence_file(const fs::path& path, const std::string& lang, SentenceList& into) {
  const auto lines = data::read_utf8_lines(path);
  const std::string source = path.filename().string();
  size_t first = 0;
  while (first < lines.size() && lines[first].empty()) ++first;
  if (first == lines.size()) return;
  const auto header = split_tabs(lines[first]);
  const auto sentence_col = std::find(header.begin(), header.end(), "sentence");
  if (sentence_col == header.end()) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].empty()) continue;
      // A TSV whose text column has another name ("text", as in Hugging Face datasets) would
      // otherwise be embedded row by row, header and other columns included.
      if (lines[i].find('\t') != std::string::npos) {
        throw DataError(where(path, i + 1) +
                        "a tab in a plain-text line; a TSV input needs a header row with a "
                        "`sentence` column (and optionally `lang`)");
      }
      SentenceRecord r{lines[i], lang, source, static_cast<int64_t>(i + 1), {}};
      r.extra.resize(into.extra_columns.size());
      into.records.push_back(std::move(r));
    }
    return;
  }
  const size_t s_col = static_cast<size_t>(sentence_col - header.begin());
  const auto lang_it = std::find(header.begin(), header.end(), "lang");
  const int l_col = lang_it == header.end() ? -1 : static_cast<int>(lang_it - header.begin());
  std::vector<std::string> extra;
  std::vector<size_t> extra_cols;
  for (size_t c = 0; c < header.size(); ++c) {
    if (c != s_col && static_cast<int>(c) != l_col) {
      // metadata.tsv writes these itself: a second column of the same name would be ambiguous.
      for (const char* own : {"index", "source", "line", "tokens"}) {
        if (header[c] == own) {
          throw DataError(where(path, first + 1) + "column '" + header[c] +
                          "' is one xlt writes itself in metadata.tsv (index, source, line, "
                          "tokens): rename it");
        }
      }
      extra.push_back(header[c]);
      extra_cols.push_back(c);
    }
  }
  // Inputs without extra columns (plain text, or a TSV of sentence/lang only) go with any; two
  // inputs with different extra columns do not, in whichever order they come.
  if (into.extra_columns.empty() && !extra.empty()) {
    into.extra_columns = extra;
    for (auto& r : into.records) r.extra.resize(extra.size());
  } else if (!extra.empty() && extra != into.extra_columns) {
    throw DataError(where(path, first + 1) +
                    "its extra metadata columns differ from those of the inputs before it");
  }
  for (size_t i = first + 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const auto f = split_tabs(lines[i]);
    if (f.size() != header.size()) {
      throw DataError(where(path, i + 1) + std::to_string(f.size()) +
                      " tab-separated fields, expected " + std::to_string(header.size()) +
                      " as in the header");
    }
    SentenceRecord r{f[s_col],
                     l_col >= 0 ? f[static_cast<size_t>(l_col)] : lang,
                     source,
                     static_cast<int64_t>(i + 1),
                     {}};
    for (size_t c : extra_cols) r.extra.push_back(f[c]);
    r.extra.resize(into.extra_columns.size());
    into.records.push_back(std::move(r));
  }
}

SentenceList read_sentence_inputs(const std::vector<std::string>& specs) {
  SentenceList list;
  for (const auto& s : specs) {
    const auto [lang, path] = split_lang_path(s);
    read_sentence_file(path, lang, list);
  }
  if (list.records.empty()) {
    throw DataError("no sentences in the --input files (expected one sentence per line)");
  }
  return list;
}

}  // namespace xlt::analysis
