// Where a model lives: a local folder, or a Hugging Face model id ("org/name[@revision]") found in
// the local Hugging Face cache exactly as huggingface_hub lays it out:
//
//   <cache>/models--org--name/refs/<ref>           commit hash of a branch or tag ("main")
//   <cache>/models--org--name/snapshots/<commit>/  the files (symlinks into ../../blobs/)
//
// with <cache> = $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE (legacy), else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. Nothing here downloads; the
// path helpers are shared with code that fills the cache. Thread-compatible (reads environment
// variables at call time).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xlt::io {

enum class RepoType { kModel, kDataset, kSpace };

struct HubCacheDir {
  std::filesystem::path path;
  std::string decided_by;  // "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", ... , "HOME"
};
// The cache root huggingface_hub would use now (not required to exist).
HubCacheDir hub_cache_dir();

// "org/name" or "name" (huggingface_hub's rules: letters, digits, '-', '_', '.', at most 96
// characters, no "--" or "..", not starting or ending with '-' or '.').
bool is_valid_repo_id(std::string_view repo_id);
// A full 40-character lowercase hex commit hash.
bool is_commit_hash(std::string_view revision);

struct RepoRef {
  std::string repo_id;
  std::string revision = "main";  // branch, tag or commit hash

  // "org/name" or "org/name@revision". Throws UsageError for an invalid id or revision.
  static RepoRef parse(std::string_view spec);
  std::string str() const { return revision == "main" ? repo_id : repo_id + "@" + revision; }
};

// "models--org--name" ("datasets--", "spaces--" for other repository types).
std::string repo_folder_name(std::string_view repo_id, RepoType type = RepoType::kModel);
std::filesystem::path repo_cache_path(const std::filesystem::path& cache, std::string_view repo_id,
                                      RepoType type = RepoType::kModel);

struct CachedSnapshot {
  std::filesystem::path dir;  // <repo>/snapshots/<commit>
  std::string commit;
};
// The snapshot for `ref`: refs/<revision> names the commit (a revision with no refs file is
// taken as a commit itself, as huggingface_hub does). nullopt when not in the cache.
std::optional<CachedSnapshot> find_cached_snapshot(const std::filesystem::path& cache,
                                                   const RepoRef& ref,
                                                   RepoType type = RepoType::kModel);
// Names under refs/ and snapshots/ of a cached repository, for error messages.
std::vector<std::string> cached_revisions(const std::filesystem::path& cache,
                                          std::string_view repo_id,
                                          RepoType type = RepoType::kModel);

struct ModelLocation {
  std::filesystem::path path;  // a folder (config.json, weights, tokenizer) or a file
  bool from_hub_cache = false;
  std::string repo_id;   // hub only
  std::string revision;  // hub only
  std::string commit;    // hub only
};

// `spec` is an existing path (used as is), else a model id resolved in hub_cache_dir() (or
// `cache` when given). Throws IoError saying where it looked (local path, cache folder and the
// variable that chose it, refs file, revisions present).
ModelLocation resolve_model_location(std::string_view spec);
ModelLocation resolve_model_location(std::string_view spec, const HubCacheDir& cache);

}  // namespace xlt::io
