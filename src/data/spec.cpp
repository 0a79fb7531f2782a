// --data / --train / --dev specifications, --langs lists and seeded subsampling; see
// include/xlt/data/spec.h.
#include "xlt/data/spec.h"

#include <algorithm>
#include <filesystem>
#include <functional>

#include "xlt/core/error.h"
#include "xlt/data/random.h"
#include "xlt/io/dataset_download.h"

namespace xlt::data {
namespace fs = std::filesystem;

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}
}  // namespace

bool is_language_code(std::string_view code) {
  if (code.empty() || code.size() > 16) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(code[0])) return false;
  return std::all_of(code.begin(), code.end(), [&](char c) {
    return alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::vector<std::string> parse_lang_list(const std::vector<std::string>& values,
                                         std::string_view flag) {
  std::vector<std::string> out;
  for (const auto& value : values) {
    std::string_view rest = value;
    for (;;) {
      size_t comma = rest.find(',');
      std::string_view item = trim(rest.substr(0, comma));
      if (item.empty())
        throw UsageError(std::string(flag) + " '" + value +
                         "': empty language (expected a comma-separated list like en,es,fr)");
      if (!is_language_code(item))
        throw UsageError(std::string(flag) + " '" + value + "': '" + std::string(item) +
                         "' is not a language code (letters, digits, '-' or '_', starting with a "
                         "letter)");
      if (std::find(out.begin(), out.end(), item) != out.end())
        throw UsageError(std::string(flag) + ": language '" + std::string(item) + "' given twice");
      out.emplace_back(item);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return out;
}

std::vector<std::string> parse_lang_list(std::string_view value, std::string_view flag) {
  if (trim(value).empty()) return {};
  return parse_lang_list(std::vector<std::string>{std::string(value)}, flag);
}

DataSpec parse_data_spec(std::string_view value, std::string_view flag) {
  const std::string shown = std::string(flag) + " '" + std::string(value) + "'";
  if (trim(value).empty())
    throw UsageError(std::string(flag) + ": empty value (expected LANG=PATH or PATH)");
  size_t eq = value.find('=');
  if (eq == 0) throw UsageError(shown + ": missing language before '=' (expected LANG=PATH)");
  if (eq != std::string_view::npos && is_language_code(value.substr(0, eq))) {
    std::string_view path = value.substr(eq + 1);
    if (path.empty()) throw UsageError(shown + ": missing path after '=' (expected LANG=PATH)");
    return {std::string(value.substr(0, eq)), std::string(path)};
  }
  return {"", std::string(value)};
}

std::vector<NliDataset> parse_data_specs(const std::vector<std::string>& specs,
                                         const std::vector<std::string>& langs,
                                         const SpecOptions& options) {
  const std::string& flag = options.flag;
  if (specs.empty())
    throw UsageError("no " + flag + " given (expected " + flag + " LANG=PATH or " + flag +
                     " PATH --langs L1,L2)");
  std::vector<NliDataset> out;
  auto claim = [&](const std::string& lang, const std::string& spec) {
    for (const auto& d : out)
      if (d.lang == lang)
        throw UsageError(flag + ": language '" + lang + "' given twice (" + d.source + " and " +
                         spec + ")");
  };
  // One file: a language-column file gives the languages `want` (all when empty); any other
  // file is one language, `single_lang()` (which may refuse). `who` names the value in
  // duplicate-language messages.
  auto read_languages =
      [&](const std::string& path, const ReadOptions& read, const std::vector<std::string>& want,
          const std::function<std::string()>& single_lang, const std::string& who) {
        if (has_language_column(path, read.format)) {
          // Check duplicates before the (possibly long) read.
          for (size_t i = 0; i < want.size(); ++i) {
            if (std::find(want.begin(), want.begin() + static_cast<std::ptrdiff_t>(i), want[i]) !=
                want.begin() + static_cast<std::ptrdiff_t>(i)) {
              throw UsageError(flag + " " + who + ": language '" + want[i] + "' given twice");
            }
            claim(want[i], who);
          }
          for (auto& d : read_nli_by_language(path, want, read)) {
            claim(d.lang, who);
            out.push_back(std::move(d));
          }
          return;
        }
        const std::string lang = single_lang();
        claim(lang, who);
        out.push_back(read_nli_file(path, lang, read));
      };
  auto read_one_spec = [&](const DataSpec& spec) {
    const std::string shown =
        flag + " " + (spec.lang.empty() ? spec.path : spec.lang + "=" + spec.path);
    if (!fs::exists(spec.path)) throw FileNotFound(shown + ": file not found: " + spec.path);
    if (fs::is_directory(spec.path))
      throw IoError(shown + ": " + spec.path + " is a folder, expected a data file");
    if (!spec.lang.empty()) {
      claim(spec.lang, spec.path);
      out.push_back(read_nli_file(spec.path, spec.lang, options.read));
      return;
    }
    read_languages(
        spec.path, options.read, langs,
        [&] {
          if (langs.size() != 1)
            throw UsageError(shown +
                             ": this file has no language column, so its language must be "
                             "given: write " +
                             flag + " LANG=" + spec.path +
                             (langs.empty() ? std::string(" (or add --langs LANG)")
                                            : " (--langs names " + std::to_string(langs.size()) +
                                                  " languages: " + join(langs) + ")"));
          return langs[0];
        },
        spec.path);
  };
  // Every value's syntax first: a typo fails before any (possibly long) read.
  bool all_lang_path = true;
  for (const auto& s : specs) {
    const bool lang_path = !io::is_dataset_spec(s) && !parse_data_spec(s, flag).lang.empty();
    all_lang_path = all_lang_path && lang_path;
  }
  std::vector<std::string> chosen = specs;
  if (options.langs_select_values && all_lang_path && !langs.empty()) {
    std::vector<std::string> given;
    for (const auto& s : specs) given.push_back(parse_data_spec(s, flag).lang);
    for (const auto& l : langs) {
      if (std::find(given.begin(), given.end(), l) == given.end()) {
        throw UsageError("--langs names '" + l + "', which no " + flag +
                         " LANG=PATH value gives (they give: " + join(given) + ")");
      }
    }
    chosen.clear();
    for (size_t i = 0; i < specs.size(); ++i) {
      if (std::find(langs.begin(), langs.end(), given[i]) != langs.end())
        chosen.push_back(specs[i]);
    }
  }
  for (const auto& s : chosen) {
    if (!io::is_dataset_spec(s)) {
      read_one_spec(parse_data_spec(s, flag));
      continue;
    }
    // A downloaded dataset named without a path (`xlt download-data`): its languages are the
    // spec's lang=..., else --langs, else all of them; MultiNLI is English.
    const io::DatasetFiles files = io::resolve_dataset_spec(s);
    if (!files.options.empty()) {
      throw UsageError(flag + " " + s + ": unknown key '" + files.options.begin()->first +
                       "' (a dataset spec takes lang and split, e.g. xnli:lang=hi:split=test)");
    }
    ReadOptions read = options.read;
    if (read.format == NliFormat::kAuto) read.format = parse_nli_format(files.format);
    read_languages(
        files.files.at(0).string(), read, files.languages.empty() ? langs : files.languages,
        [&] {
          // Only MultiNLI has no language column: English. --langs selects languages in the
          // other values (translate-train: MultiNLI plus XNLI dev in de, fr), never relabels it.
          return !files.languages.empty() ? files.language() : std::string("en");
        },
        s);
  }
  return out;
}

std::vector<NliDataset> parse_data_specs(const std::vector<std::string>& specs,
                                         const std::vector<std::string>& langs, NliFormat format,
                                         bool skip_bad_rows) {
  SpecOptions options;
  options.read.format = format;
  options.read.skip_bad_rows = skip_bad_rows;
  return parse_data_specs(specs, langs, options);
}

bool is_parallel(const NliDataset& a, const NliDataset& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.examples.size(); ++i) {
    const auto& x = a.examples[i];
    const auto& y = b.examples[i];
    if (!x.pair_id.empty() && !y.pair_id.empty()) {
      if (x.pair_id != y.pair_id) return false;
    } else if (x.index != y.index) {
      return false;
    }
  }
  return true;
}

Sampling parse_sampling(const std::string& s) {
  if (s == "xlt") return Sampling::kXlt;
  if (s == "numpy") return Sampling::kNumpy;
  throw UsageError("sampling: expected \"xlt\" or \"numpy\", found \"" + s + "\"");
}

namespace {

// k of the positions 0..n-1, sorted.
std::vector<int64_t> draw(int64_t n, int64_t k, uint64_t seed, Sampling how) {
  if (how == Sampling::kNumpy) {
    auto keep = numpy_permutation(n, seed);
    keep.resize(static_cast<size_t>(k));
    std::sort(keep.begin(), keep.end());
    return keep;
  }
  return sample_without_replacement(n, k, seed);
}

void keep_examples(NliDataset& dataset, const std::vector<int64_t>& keep) {
  std::vector<NliExample> chosen;
  chosen.reserve(keep.size());
  for (int64_t p : keep) chosen.push_back(std::move(dataset.examples[static_cast<size_t>(p)]));
  dataset.examples = std::move(chosen);
}

}  // namespace

void subsample(NliDataset& dataset, int64_t k, uint64_t seed, Sampling how) {
  dataset.bad_positions.clear();  // one set: drawn over its kept rows only
  if (k <= 0 || k >= dataset.size()) return;
  keep_examples(dataset, draw(dataset.size(), k, seed, how));
}

void subsample(std::vector<NliDataset>& datasets, int64_t k, uint64_t seed, Sampling how) {
  for (const auto& d : datasets) {  // all checked before any is changed
    const auto& bad = d.bad_positions;
    const int64_t n = d.size() + static_cast<int64_t>(bad.size());
    for (size_t i = 0; i < bad.size(); ++i) {
      if (bad[i] < 0 || bad[i] >= n || (i > 0 && bad[i] <= bad[i - 1]))
        throw Error("subsample: " + d.lang + "'s bad_positions must be increasing and below " +
                    std::to_string(n) + " (the kept and bad rows)");
    }
  }
  for (auto& d : datasets) {
    const auto& bad = d.bad_positions;
    const int64_t n = d.size() + static_cast<int64_t>(bad.size());
    if (k <= 0 || k >= n) {
      d.bad_positions.clear();
      continue;
    }
    // Drawn over the positions a file without bad rows would have, then mapped to examples.
    std::vector<int64_t> keep;
    size_t b = 0;  // bad positions below the current one
    for (int64_t p : draw(n, k, seed, how)) {
      while (b < bad.size() && bad[b] < p) ++b;
      if (b < bad.size() && bad[b] == p) continue;
      keep.push_back(p - static_cast<int64_t>(b));
    }
    keep_examples(d, keep);
    d.bad_positions.clear();
  }
}

}  // namespace xlt::data
