// The built-in linguistic distance table (a compiled copy of data/linguistic_distance.tsv; see
// that file for the sources) and a reader for user-supplied tables of the same layout.
#include "xlt/study/distance.h"

#include <cmath>
#include <sstream>

#include "xlt/core/error.h"
#include "xlt/core/file.h"

namespace xlt::study {
namespace {

struct Row {
  const char* lang;
  const char* iso;
  double syntactic;
  int genetic;
  double geographic;
  const char* relation;
};

// Keep in sync with data/linguistic_distance.tsv (DistanceTable.BuiltinMatchesShippedTsv).
constexpr Row kRows[] = {
    {"en", "eng", 0.0000, 0, 0.0000, "English itself"},
    {"de", "deu", 0.0975, 1, 0.0529,
     "Indo-European > Germanic > Northwest Germanic > West Germanic"},
    {"bg", "bul", 0.1422, 2, 0.1094, "Indo-European (Balto-Slavic)"},
    {"es", "spa", 0.1784, 2, 0.0698, "Indo-European (Italic > Romance)"},
    {"fr", "fra", 0.1882, 2, 0.0297, "Indo-European (Italic > Romance)"},
    {"ru", "rus", 0.1882, 2, 0.2316, "Indo-European (Balto-Slavic)"},
    {"el", "ell", 0.2169, 2, 0.1125, "Indo-European (Graeco-Phrygian > Greek)"},
    {"zh", "cmn", 0.2876, 3, 0.4021, "none (Sino-Tibetan)"},
    {"vi", "vie", 0.3397, 3, 0.4751, "none (Austroasiatic)"},
    {"ar", "arb", 0.3556, 3, 0.2293, "none (Afro-Asiatic)"},
    {"th", "tha", 0.3606, 3, 0.4751, "none (Tai-Kadai)"},
    {"hi", "hin", 0.3838, 2, 0.3510, "Indo-European (Indo-Iranian > Indo-Aryan)"},
    {"ur", "urd", 0.3838, 2, 0.3176, "Indo-European (Indo-Iranian > Indo-Aryan)"},
    {"tr", "tur", 0.4933, 3, 0.1467, "none (Turkic)"},
    {"sw", "swh", 0.5262, 3, 0.3857, "none (Atlantic-Congo > Bantu)"},
};

constexpr const char* kCitation =
    "URIEL/lang2vec (Littell et al. 2017, EACL), read by xlt from lang2vec's feature files "
    "(github.com/antonisa/lang2vec, commit 82ab445; geo features from PyPI lang2vec 1.1.2); "
    "data/linguistic_distance.tsv";

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, '\t')) out.push_back(field);
  if (!line.empty() && line.back() == '\t') out.emplace_back();
  return out;
}

}  // namespace

const std::vector<std::string>& builtin_distance_measures() {
  static const std::vector<std::string> m = {"syntactic", "genetic", "geographic"};
  return m;
}

DistanceTable builtin_distance_table(const std::string& measure) {
  DistanceTable t;
  t.source_lang = "en";
  t.measure = measure;
  t.source = kCitation;
  if (measure == "syntactic") {
    t.description =
        "cosine distance between the URIEL syntax_knn feature vectors of English and the "
        "language (computed by xlt from lang2vec's feature file; not lang2vec's precomputed "
        "'syntactic' distance).";
  } else if (measure == "genetic") {
    t.description =
        "genealogical relation to English from URIEL's Glottolog-derived family features: 0 same "
        "language, 1 same genus (Germanic), 2 same family (Indo-European), 3 different family.";
  } else if (measure == "geographic") {
    t.description =
        "great-circle distance between English's and the language's location divided by half "
        "the Earth's circumference (locations fitted by xlt to URIEL's geo features, the "
        "distances to 299 fixed points).";
  } else {
    throw ConfigError(
        "distance.measure: the built-in table has \"syntactic\", \"genetic\" and "
        "\"geographic\", not \"" +
        measure + "\"");
  }
  for (const auto& r : kRows) {
    t.values[r.lang] = measure == "syntactic"    ? r.syntactic
                       : measure == "geographic" ? r.geographic
                                                 : static_cast<double>(r.genetic);
  }
  return t;
}

std::string builtin_distance_tsv() {
  std::string out = "lang\tiso639_3\tsyntactic\tgenetic\tgeographic\trelation\n";
  for (const auto& r : kRows) {
    char num[32], geo[32];
    std::snprintf(num, sizeof num, "%.4f", r.syntactic);
    std::snprintf(geo, sizeof geo, "%.4f", r.geographic);
    out += std::string(r.lang) + "\t" + r.iso + "\t" + num + "\t" + std::to_string(r.genetic) +
           "\t" + geo + "\t" + r.relation + "\n";
  }
  return out;
}

DistanceTable read_distance_tsv(const std::filesystem::path& path, const std::string& measure,
                                const std::string& source_lang) {
  const std::string text = read_file(path);
  DistanceTable t;
  t.source_lang = source_lang;
  t.measure = measure;
  t.source = path.string();
  t.description = "column '" + measure + "' of " + path.filename().string() + ".";
  std::istringstream in(text);
  std::string line;
  int line_no = 0, lang_col = -1, value_col = -1;
  bool header = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto fields = split_tabs(line);
    if (!header) {
      for (size_t i = 0; i < fields.size(); ++i) {
        if (fields[i] == "lang") lang_col = static_cast<int>(i);
        if (fields[i] == measure) value_col = static_cast<int>(i);
      }
      if (lang_col < 0) {
        throw DataError(path.string() + ":" + std::to_string(line_no) +
                        ": the header has no 'lang' column");
      }
      if (value_col < 0) {
        throw ConfigError(path.string() + ":" + std::to_string(line_no) + ": distance.measure '" +
                          measure + "' is not a column of the header");
      }
      header = true;
      continue;
    }
    const size_t need = static_cast<size_t>(std::max(lang_col, value_col)) + 1;
    if (fields.size() < need) {
      throw DataError(path.string() + ":" + std::to_string(line_no) + ": expected at least " +
                      std::to_string(need) + " tab-separated fields");
    }
    const std::string& v = fields[static_cast<size_t>(value_col)];
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(d)) {
      throw DataError(path.string() + ":" + std::to_string(line_no) + ": '" + v +
                      "' is not a number");
    }
    t.values[fields[static_cast<size_t>(lang_col)]] = d;
  }
  if (!header) throw DataError(path.string() + ": no header row");
  return t;
}

}  // namespace xlt::study
