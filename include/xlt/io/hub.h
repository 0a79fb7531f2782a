// Models from the Hugging Face hub, without Python: downloads into the same cache layout that
// huggingface_hub and transformers use, so a model fetched by xlt is found by transformers and a
// model cached by transformers is found by xlt.
//
//   <cache>/models--<org>--<name>/blobs/<etag>            file contents (etag = sha256 for LFS
//                                                          files, the git blob id otherwise)
//   <cache>/models--<org>--<name>/snapshots/<commit>/<file> -> ../../blobs/<etag>  (relative)
//   <cache>/models--<org>--<name>/refs/<revision>          the commit a branch/tag resolved to
//
// Environment (read by HubOptions::from_env, same meaning as in huggingface_hub):
//   the cache folder as in hub_cache.h (HF_HUB_CACHE, HF_HOME, ...), HF_ENDPOINT
//   (https://huggingface.co), HF_TOKEN (else HUGGING_FACE_HUB_TOKEN, else the file $HF_TOKEN_PATH
//   or $HF_HOME/token written by `huggingface-cli login`) sent as "Authorization: Bearer",
//   HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE=1): no network request at all, cached files only.
//   HF_HUB_DOWNLOAD_TIMEOUT: seconds without progress before a transfer is retried (default 10).
//
// Usage:
//   auto dir = xlt::io::resolve_or_download("bert-base-multilingual-cased").path;  // or a folder
//   auto r = xlt::io::download_model("xlm-roberta-base", "main", {"*.json"});
//
// Downloads go to blobs/<etag>.incomplete under an exclusive flock on
// <cache>/.locks/models--<org>--<name>/<etag>.lock, the lock huggingface_hub takes for the same
// blob (so concurrent xlt and Python processes neither corrupt nor duplicate a blob), resume after
// a dropped connection with an HTTP Range request, are verified (size; sha256 when the etag is one,
// i.e. LFS files) and only then renamed into place. SHA-256 comes from OpenSSL's libcrypto (EVP),
// which libcurl already pulls in.
//
// Thread safety: the functions are re-entrant (one libcurl handle per call); concurrent calls and
// processes on one cache are safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xlt/core/error.h"
#include "xlt/io/hub_cache.h"

namespace xlt::io {

// A failed hub/HTTP operation. An IoError, so the CLI exits 2. `http_status` is 0 when no HTTP
// answer came back (no network, timeout, offline mode).
class HubError : public IoError {
 public:
  explicit HubError(const std::string& message, long http_status = 0)
      : IoError(message), http_status_(http_status) {}
  long http_status() const { return http_status_; }

 private:
  long http_status_;
};

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // no trailing slash
  std::string token;                                // "" = anonymous
  std::filesystem::path cache_dir;                  // the hub cache (hub_cache_dir())
  bool offline = false;
  bool progress = true;         // progress bars on stderr
  double timeout_seconds = 10;  // connect timeout, and the stall time before a retry
  int max_retries = 5;          // resumptions after a dropped connection, per file
  // Fetch every file again even when the cache has it (huggingface_hub's force_download): the
  // way to replace a damaged blob. Not with offline.
  bool force_download = false;

  // Everything from the environment variables listed at the top of this file.
  static HubOptions from_env();
};

// The files a model needs, chosen from a repository listing: config.json,
// generation_config.json, tokenizer files (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json, added_tokens.json, vocab.txt, sentencepiece.bpe.model and other
// *.model SentencePiece files) and the weights: model.safetensors, else its index
// (model.safetensors.index.json: the caller adds the shards it names), else pytorch_model.bin,
// else pytorch_model.bin.index.json. Only top-level files. Order: as in `repo_files`.
std::vector<std::string> select_model_files(const std::vector<std::string>& repo_files);

// fnmatch-style globs ('*' also matches '/', as Python's fnmatch): files matching any pattern.
std::vector<std::string> filter_files(const std::vector<std::string>& repo_files,
                                      const std::vector<std::string>& patterns);

struct SnapshotDownload {
  std::string repo_id;
  std::string revision;
  std::string commit;                  // 40-hex commit the revision resolved to
  std::filesystem::path snapshot_dir;  // <repo folder>/snapshots/<commit>
  std::vector<std::string> files;      // repo-relative files now present in snapshot_dir
  int files_downloaded = 0;            // blobs transferred over the network (0: all cached)
  int64_t bytes_downloaded = 0;        // bytes received (resumed parts not counted twice)
  double seconds = 0;
};

// Downloads a model repository's files at `revision` (a branch, tag or commit) into the cache:
// the default selection (select_model_files, plus the shards of a sharded checkpoint) or, when
// `include` is not empty, every file matching one of its globs. Files already in the snapshot
// cost no request; a repeat call makes exactly one request (the listing). Offline: returns the
// cached snapshot if it has the files (`files`: their names in the repository, matched by
// `include`), else throws HubError saying so.
// Throws HubError (401/403: mentions HF_TOKEN; 404: names the repo and revision; no network:
// mentions HF_HUB_OFFLINE=1), IoError (disk full), CheckpointError (bad index json), UsageError
// (the cache folder is a file or lies under one).
SnapshotDownload download_model(const std::string& repo_id, const std::string& revision = "main",
                                const std::vector<std::string>& include = {},
                                const HubOptions& options = HubOptions::from_env());

// One file of a repository (hf_hub_download): returns its snapshot path.
std::filesystem::path download_hub_file(const std::string& repo_id, const std::string& filename,
                                        const std::string& revision = "main",
                                        const HubOptions& options = HubOptions::from_env());

// True when `dir` holds config.json and complete weights (model.safetensors, all shards of an
// index, or pytorch_model.bin / all its shards).
bool snapshot_has_model(const std::filesystem::path& dir);

// What `xlt study` and `xlt convert` call with a MODEL argument (the other commands look in the
// cache only, resolve_model_location, and say to run `xlt download`): an existing local path is
// used as is; a hub id ("org/name" or "org/name@revision") is looked up in the cache (no request
// when a snapshot with config.json and complete weights is there) and otherwise downloaded with
// the default file selection, unless offline. With `include` (globs, as download_model), exactly
// those files are fetched instead (convert wants pytorch_model.bin where the default selection
// prefers model.safetensors); a cached snapshot then costs one listing request. Throws IoError for
// a missing local path (see resolve_model_location), HubError as download_model (offline and not
// cached included).
ModelLocation resolve_or_download(std::string_view model,
                                  const HubOptions& options = HubOptions::from_env(),
                                  const std::vector<std::string>& include = {});

// ---- Verified downloads of any URL (used for dataset archives too) ----

struct UrlDownload {
  std::string url;
  std::vector<std::string> headers;  // extra request headers ("Name: value")
  std::filesystem::path dest;        // final path; <dest>.incomplete beside it
  // The lock file held while downloading. "" = <dest>.lock, removed afterwards. A path given here
  // (huggingface_hub's .locks/<repo folder>/<etag>.lock for hub blobs) is kept, as Python's
  // filelock expects of a lock file it shares.
  std::filesystem::path lock_path;
  int64_t expected_size = -1;   // -1 = unknown
  std::string expected_sha256;  // lower-case hex; "" = not checked
  std::string label;            // progress label and error messages ("" = file name)
  std::string offline_hint;     // appended to "cannot reach" errors
  bool progress = true;
  double timeout_seconds = 10;
  int max_retries = 5;
};

struct UrlDownloadResult {
  int64_t size = 0;               // final file size
  int64_t bytes_transferred = 0;  // received over the network in this call
  std::string sha256;             // of the final file (always computed)
  bool already_present = false;   // dest existed: nothing was requested
  int attempts = 0;               // GET requests made (1 + resumptions)
  double seconds = 0;
};

// Downloads `url` to `dest` (see the top of this file for .incomplete/.lock/resume/verify).
// A checksum or size mismatch deletes the partial file and throws HubError: nothing is left
// under `dest`.
UrlDownloadResult download_url(const UrlDownload& request);

// Lower-case hex SHA-256.
std::string sha256_hex(std::string_view data);
std::string sha256_file(const std::filesystem::path& path);

}  // namespace xlt::io
