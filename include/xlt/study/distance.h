// Linguistic distances of target languages from the transfer source, to relate the transfer gap
// to typology. xlt ships a small cited table for the 15 XNLI languages, distances from English
// (data/linguistic_distance.tsv, compiled in here; the file's header says exactly where each
// number comes from), and reads a user's own table in the same layout.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace xlt::study {

struct DistanceTable {
  std::string source_lang = "en";        // distances are from this language
  std::string measure;                   // column used ("syntactic", "genetic", ...)
  std::string description;               // one sentence on what the number is
  std::string source;                    // citation / file
  std::map<std::string, double> values;  // language -> distance
};

// The measures the built-in table has: "syntactic", "genetic".
const std::vector<std::string>& builtin_distance_measures();
// The built-in table (distances from English). Throws ConfigError for an unknown measure.
DistanceTable builtin_distance_table(const std::string& measure);
// The built-in table as the TSV text shipped in data/linguistic_distance.tsv, without comments.
std::string builtin_distance_tsv();

// Reads a TSV: '#' lines are comments, then a header with a "lang" column and one column per
// measure; values are numbers. `source_lang` is recorded, not checked. Throws DataError
// ("file:line: ...") or ConfigError when `measure` is not a column.
DistanceTable read_distance_tsv(const std::filesystem::path& path, const std::string& measure,
                                const std::string& source_lang);

}  // namespace xlt::study
