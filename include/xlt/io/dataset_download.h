// The canonical NLI archives, downloaded once into a data cache and named on the command line by
// a spec instead of a path:
//
//   xlt download-data xnli        ->  $XLT_DATA_HOME/xnli/XNLI-1.0/xnli.{dev,test}.tsv
//   xlt download-data multinli    ->  $XLT_DATA_HOME/multinli/multinli_1.0/multinli_1.0_*.jsonl
//   --data xnli:lang=hi:split=test      resolve_dataset_spec() -> that file + language "hi"
//
// $XLT_DATA_HOME defaults to $XDG_CACHE_HOME/xlt/data, else ~/.cache/xlt/data. Archives are
// verified against pinned sizes and SHA-256 sums (docs/download.md says where they come from),
// downloaded with the same resumable, locked, verified transfer as hub models (hub.h), unpacked
// with libzip into a temporary folder that is renamed into place, and recorded in
// $XLT_DATA_HOME/manifest.json (URL, bytes, sha256, files, date). Mirrors: XLT_XNLI_URL /
// XLT_MULTINLI_URL replace the URL (the pinned checksum still applies unless XLT_XNLI_SHA256 /
// XLT_MULTINLI_SHA256 give another one).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace xlt::io {

struct DatasetSource {
  std::string name;                   // "xnli", "multinli"
  std::string url;                    // canonical archive URL
  std::string url_env;                // environment variable overriding it
  std::string sha256_env;             // environment variable overriding the checksum
  int64_t size = 0;                   // pinned archive size in bytes
  std::string sha256;                 // pinned archive SHA-256
  std::string folder;                 // top-level folder inside the archive
  std::vector<std::string> required;  // files (under folder) that must be in the archive
  std::string license;
};

// xnli and multinli.
const std::vector<DatasetSource>& dataset_sources();
// By name ("xnli", "multinli", alias "mnli"). Throws UsageError listing the known names.
const DatasetSource& dataset_source(std::string_view name);

// $XLT_DATA_HOME, else $XDG_CACHE_HOME/xlt/data, else ~/.cache/xlt/data.
std::filesystem::path default_data_home();

struct DatasetDownloadOptions {
  std::filesystem::path dir;  // data home; empty = default_data_home()
  bool force = false;         // download and unpack again even when present
  bool keep_archive = false;  // keep <dir>/.downloads/<archive> after unpacking
  bool progress = true;
  double timeout_seconds = 10;
  int max_retries = 5;
};

struct DatasetDownloadResult {
  std::filesystem::path dataset_dir;  // <dir>/<name>
  std::string url;
  std::string sha256;
  int64_t bytes = 0;
  std::string checksum_source;  // "pinned" or the overriding environment variable
  bool already_present = false;
  std::vector<std::string> files;  // relative to dataset_dir
};

// Downloads, verifies and unpacks a dataset (see the top of this file). A second call is a no-op
// (no request) while the manifest entry and the files are there. Concurrent calls are safe, for
// the same or different datasets (the manifest is updated under its own lock). `force` also
// discards a partial download of an earlier run. Throws HubError (network, checksum), IoError
// (disk), DataError (archive lacks a file; a damaged manifest or entry, naming the field),
// ConfigError (a checksum override that is not 64 hex digits), UsageError (`dir` is a file).
DatasetDownloadResult download_dataset(std::string_view name,
                                       const DatasetDownloadOptions& options = {});

// Unpacks every regular entry of a zip archive under `dest` (created). Refuses absolute paths
// and ".." components; skips macOS metadata (__MACOSX/, ._*). Returns the files written.
std::vector<std::string> unzip_archive(const std::filesystem::path& zip,
                                       const std::filesystem::path& dest, bool progress = false);

// What a "dataset:key=value:..." spec names.
struct DatasetFiles {
  std::string dataset;                 // "xnli", "multinli"
  std::string split;                   // "dev", "test", "train", "dev_matched", "dev_mismatched"
  std::vector<std::string> languages;  // lang=hi or lang=en,es; empty = every language
  std::string format;                  // xlt::data format name: "xnli-tsv" or "mnli-jsonl"
  std::vector<std::filesystem::path> files;
  std::map<std::string, std::string> options;  // any other key=value, for the caller

  // The first language, "" when none was given.
  std::string language() const { return languages.empty() ? "" : languages.front(); }
};

// True when `s` starts with a known dataset name and ':' ("xnli:lang=hi").
bool is_dataset_spec(std::string_view s);

// Resolves "xnli:lang=hi:split=test", "xnli:split=dev", "multinli:split=train" against the data
// home. Keys: lang (XNLI's 15 codes, comma-separated; MultiNLI: en), split (xnli: dev|test,
// alias validation; multinli: train|dev_matched|dev_mismatched, aliases validation_matched,
// validation_mismatched). Defaults: xnli split=test, multinli split=train. Throws UsageError for
// a malformed spec or value, DataError naming `xlt download-data NAME` when the files are absent.
DatasetFiles resolve_dataset_spec(std::string_view spec,
                                  const std::filesystem::path& data_home = default_data_home());

}  // namespace xlt::io
