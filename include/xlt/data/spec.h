// Dataset specifications as written on the command line, shared by `xlt eval` (--data) and
// `xlt finetune` (--train/--dev), and seeded subsampling (--samples N --seed S).
//
//   --data en=dev-en.tsv --data es=dev-es.tsv     one file per language (LANG=PATH)
//   --data xnli.test.tsv --langs en,es,fr,hi       a file with a language column (XNLI-1.0)
//   --data train.jsonl --langs en                  a single-language file without LANG=
//   --data xnli:lang=hi,ur:split=test              a dataset `xlt download-data` fetched
//
// Usage:
//   auto langs = xlt::data::parse_lang_list(langs_flag);          // "en,es" -> {"en", "es"}
//   auto sets = xlt::data::parse_data_specs(data_flags, langs, format, skip_bad_rows);
//   xlt::data::subsample(sets, samples, seed);                    // aligned across languages
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "xlt/data/nli.h"

namespace xlt::data {

// One parsed --data value. `lang` is empty for a bare PATH.
struct DataSpec {
  std::string lang;
  std::string path;
};

// True for a language code as xlt accepts it: 1-16 characters of [A-Za-z0-9_-], starting with a
// letter ("en", "zh-Hans", "eng_Latn").
bool is_language_code(std::string_view code);

// Splits a --langs value on commas, trimming spaces: "en, es,fr" -> {"en", "es", "fr"}. Each item
// of `values` may itself be a comma list (repeated --langs flags). UsageError on an empty item,
// an invalid code or a language given twice. `flag` names the option in messages.
std::vector<std::string> parse_lang_list(const std::vector<std::string>& values,
                                         std::string_view flag = "--langs");
std::vector<std::string> parse_lang_list(std::string_view value, std::string_view flag = "--langs");

// Parses "LANG=PATH" or "PATH". The text before the first '=' is taken as a language only when it
// is a language code (so "runs/a=b.tsv" is a path). UsageError on "", "=PATH", "en=".
DataSpec parse_data_spec(std::string_view value, std::string_view flag = "--data");

struct SpecOptions {
  std::string flag = "--data";  // option name used in messages (--data, --train, --dev)
  ReadOptions read;
  // When every value is LANG=PATH, --langs picks among them (xlt eval: "languages to evaluate"),
  // so that it is never silently ignored. Off where one --langs serves several flags (finetune's
  // --train and --dev).
  bool langs_select_values = false;
};

// Reads every --data value into per-language datasets, in command-line order (a language-column
// file contributes its languages in --langs order). Rules (violations throw):
//   LANG=PATH    one language; LANG must not appear twice overall (UsageError).
//   PATH         file with a language column: reads the --langs languages (all languages in the
//                file when --langs is empty); a language missing from the file -> DataError
//                naming the languages present.
//                file without a language column: needs --langs with exactly one language, else
//                UsageError suggesting LANG=PATH.
//   NAME:k=v:... a downloaded dataset (xlt::io::resolve_dataset_spec): the spec's lang=...
//                languages, else --langs, else every language of the file (MultiNLI: en); its
//                format unless the caller gives one. Keys other than lang and split: UsageError.
//   only LANG=PATH values, --langs given and langs_select_values: the values of the --langs
//                languages, in command-line order; a --langs language no value gives ->
//                UsageError naming the languages given.
//   missing file -> IoError "FLAG LANG=PATH: file not found".
//   no specs at all -> UsageError.
std::vector<NliDataset> parse_data_specs(const std::vector<std::string>& specs,
                                         const std::vector<std::string>& langs,
                                         const SpecOptions& options = {});

// Convenience overload: only the format and skip_bad_rows vary in most commands.
std::vector<NliDataset> parse_data_specs(const std::vector<std::string>& specs,
                                         const std::vector<std::string>& langs, NliFormat format,
                                         bool skip_bad_rows = false);

// True when two datasets hold the same rows in the same order: same size and, position by
// position, the same pair_id (when both have one) or else the same source index. Parallel sets
// are what paired statistics (the transfer-gap bootstrap) need.
bool is_parallel(const NliDataset& a, const NliDataset& b);

// Keeps `k` examples chosen by sample_without_replacement(size, k, seed) (positions into the
// dataset, kept in source order; `report` stays as read). k <= 0 or k >= size keeps everything.
// Because the choice depends only on (size, k, seed), parallel datasets keep the same rows in
// every language.
// How a subset is drawn. kXlt: sample_without_replacement (above). kNumpy: the first k of
// numpy_permutation(size, seed), i.e. the rows of Hugging Face datasets'
// `.shuffle(seed=seed).select(range(k))` when the file's rows are in the dataset's order.
// Either way the kept rows stay in source order.
enum class Sampling { kXlt, kNumpy };
Sampling parse_sampling(const std::string& s);  // "xlt" / "numpy"; UsageError otherwise
void subsample(NliDataset& dataset, int64_t k, uint64_t seed, Sampling how = Sampling::kXlt);
// Subsamples every dataset with the same seed (parallel sets stay aligned). A dataset with
// bad_positions draws over its kept and bad rows together and keeps the drawn rows that were
// not bad: its sample is the other languages' rows less its bad ones (so it may hold fewer
// than k), not a shifted set of rows.
void subsample(std::vector<NliDataset>& datasets, int64_t k, uint64_t seed,
               Sampling how = Sampling::kXlt);

}  // namespace xlt::data
