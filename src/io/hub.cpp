// The Hugging Face hub protocol and cache layout (see include/xlt/io/hub.h). Mirrors
// huggingface_hub's file_download.py: HEAD the resolve URL without following redirects to read
// X-Repo-Commit / X-Linked-Etag / X-Linked-Size, then GET the redirect target into
// blobs/<etag>, then point snapshots/<commit>/<file> at it with a relative symlink.
#include "xlt/io/hub.h"

#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "io/hub_http.h"
#include "io/weight_map.h"
#include "xlt/core/file.h"
#include "xlt/core/progress.h"

namespace xlt::io {
using xlt::detail::ascii_lower;
namespace fs = std::filesystem;
using detail::HttpClient;
using detail::HttpResponse;
using detail::url_quote;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// huggingface_hub's truthy values for boolean environment variables.
bool env_true(const char* name) {
  std::string v = env(name);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::toupper(c); });
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

fs::path home_dir() {
  std::string h = env("HOME");
  return h.empty() ? fs::path("/") : fs::path(h);
}

fs::path hf_home() {
  if (auto v = env("HF_HOME"); !v.empty()) return v;
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "huggingface";
  return home_dir() / ".cache" / "huggingface";
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  return s.substr(b);
}

std::string read_token() {
  if (auto t = trim(env("HF_TOKEN")); !t.empty()) return t;
  if (auto t = trim(env("HUGGING_FACE_HUB_TOKEN")); !t.empty()) return t;
  fs::path file =
      env("HF_TOKEN_PATH").empty() ? hf_home() / "token" : fs::path(env("HF_TOKEN_PATH"));
  std::ifstream in(file);
  std::string token;
  if (in) std::getline(in, token);
  return trim(token);
}

bool is_hex(std::string_view s, std::size_t n) {
  return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// ETag values come quoted and possibly weak ("W/\"...\""): the blob name is the bare value.
std::string normalize_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

// A repository file name becomes a path under snapshots/<commit>: it must stay inside it.
void check_repo_filename(const std::string& name, const std::string& repo_id) {
  bool bad = name.empty() || name.front() == '/' || name.find('\\') != std::string::npos ||
             name.find('\0') != std::string::npos;
  std::stringstream parts(name);
  for (std::string part; !bad && std::getline(parts, part, '/');) {
    bad = part.empty() || part == "." || part == "..";
  }
  if (bad) {
    throw HubError("refusing file name '" + name + "' listed by repository '" + repo_id +
                   "': it would be stored outside the snapshot folder");
  }
}

std::string offline_hint() {
  return "To work with cached files only, set HF_HUB_OFFLINE=1.";
}

std::string token_advice(const HubOptions& o) {
  return o.token.empty() ? "set HF_TOKEN to a Hugging Face access token with read access "
                           "(https://huggingface.co/settings/tokens)"
                         : "the token in HF_TOKEN was refused or has no access to it";
}

// The server's own explanation, when it gave one.
std::string server_message(const HttpResponse& r) {
  if (auto m = r.header("x-error-message"); !m.empty()) return m;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"];
  return "";
}

[[noreturn]] void raise_for_status(const HttpResponse& r, const HubOptions& o,
                                   const std::string& repo_id, const std::string& revision,
                                   const std::string& filename = "") {
  std::string code = r.header("x-error-code");
  std::string what = "'" + repo_id + "' (revision '" + revision + "')";
  std::string msg;
  long s = r.status;
  if (code == "GatedRepo") {
    msg = repo_id + " is a gated model (HTTP " + std::to_string(s) +
          "): accept its conditions at " + o.endpoint + "/" + repo_id + ", then " + token_advice(o);
  } else if (s == 401) {
    msg = "HTTP 401 Unauthorized for " + what + " at " + o.endpoint +
          ": the repository is private or gated, or does not exist (check the id); " +
          token_advice(o);
  } else if (s == 403) {
    msg = "HTTP 403 Forbidden for " + what + " at " + o.endpoint +
          ": your token has no access to this private or gated repository; request access at " +
          o.endpoint + "/" + repo_id + " and set HF_TOKEN to a token of that account";
  } else if (s == 404 && code == "RevisionNotFound") {
    msg = "revision '" + revision + "' not found in repository '" + repo_id +
          "' (HTTP 404): check --revision (a branch, tag or commit)";
  } else if (s == 404 && (code == "EntryNotFound" || !filename.empty())) {
    msg = "file '" + filename + "' not found in repository '" + repo_id + "' at revision '" +
          revision + "' (HTTP 404)";
  } else if (s == 404) {
    msg = "repository '" + repo_id + "' or revision '" + revision + "' not found at " + o.endpoint +
          " (HTTP 404): check the model id and --revision";
  } else if (s == 429) {
    msg = "the hub is rate-limiting requests for " + what + " (HTTP 429): wait and retry";
  } else if (s >= 500) {
    msg = "hub server error HTTP " + std::to_string(s) + " for " + what + ": try again later";
  } else {
    msg = "unexpected HTTP " + std::to_string(s) + " from " + r.url + " for " + what;
  }
  if (auto m = server_message(r); !m.empty()) msg += " [server: " + m + "]";
  throw HubError(msg, s);
}

// "host:port" of a URL, lower-cased.
std::string host_of(const std::string& url) {
  auto scheme = url.find("://");
  std::size_t b = scheme == std::string::npos ? 0 : scheme + 3;
  return ascii_lower(url.substr(b, url.find('/', b) - b));
}

std::vector<std::string> auth_headers(const HubOptions& o) {
  if (o.token.empty()) return {};
  return {"Authorization: Bearer " + o.token};
}

struct Listing {
  std::string commit;
  std::vector<std::string> files;
};

Listing list_repo(HttpClient& http, const HubOptions& o, const std::string& repo_id,
                  const std::string& revision) {
  std::string url =
      o.endpoint + "/api/models/" + repo_id + "/revision/" + url_quote(revision, false);
  HttpResponse r = http.get(url, auth_headers(o));
  if (r.status != 200) raise_for_status(r, o, repo_id, revision);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string() ||
      !is_commit_hash(j["sha"].get<std::string>())) {
    throw HubError("unexpected answer from " + url + ": no 40-hex \"sha\" field (is " + o.endpoint +
                   " a Hugging Face hub?)");
  }
  Listing l;
  l.commit = j["sha"];
  if (j.contains("siblings") && j["siblings"].is_array()) {
    for (const auto& s : j["siblings"]) {
      if (s.is_object() && s.contains("rfilename") && s["rfilename"].is_string()) {
        l.files.push_back(s["rfilename"]);
      }
    }
  }
  return l;
}

struct FileMetadata {
  std::string commit, etag, location;
  int64_t size = -1;
};

// HEAD the resolve URL; relative redirects (a renamed repository) are followed, absolute ones
// (the CDN holding LFS files) are not, so X-Linked-* of the hub's answer stay readable.
FileMetadata head_file(HttpClient& http, const HubOptions& o, const std::string& repo_id,
                       const std::string& revision, const std::string& filename) {
  std::string url = o.endpoint + "/" + repo_id + "/resolve/" + url_quote(revision, false) + "/" +
                    url_quote(filename, true);
  HttpResponse r;
  for (int hop = 0;; ++hop) {
    r = http.head(url, auth_headers(o));
    std::string loc = r.header("location");
    if (r.status >= 300 && r.status < 400 && !loc.empty() && loc[0] == '/' && hop < 5) {
      auto scheme = url.find("://");
      url = url.substr(0, url.find('/', scheme + 3)) + loc;
      continue;
    }
    break;
  }
  if (r.status >= 400) raise_for_status(r, o, repo_id, revision, filename);
  FileMetadata m;
  m.commit = r.header("x-repo-commit");
  std::string etag = r.header("x-linked-etag");
  m.etag = normalize_etag(etag.empty() ? r.header("etag") : etag);
  std::string size = r.header("x-linked-size");
  if (size.empty()) size = r.header("content-length");
  try {
    m.size = size.empty() ? -1 : std::stoll(size);
  } catch (const std::exception&) {
    m.size = -1;
  }
  std::string loc = r.header("location");
  m.location = (r.status >= 300 && r.status < 400 && !loc.empty()) ? loc : url;
  if (m.commit.empty()) {
    throw HubError("no X-Repo-Commit header from " + url + ": is " + o.endpoint +
                   " a Hugging Face hub?");
  }
  if (m.etag.empty() || m.etag.find('/') != std::string::npos ||
      m.etag.find("..") != std::string::npos) {
    throw HubError("no usable ETag for " + filename + " from " + url +
                   ": cannot name the cached blob reproducibly");
  }
  return m;
}

// snapshots/<commit>/<file> -> ../../blobs/<etag> (one more ../ per folder level in <file>),
// created under a temporary name and renamed over, so readers never see it half made.
void link_pointer(const fs::path& pointer, const std::string& filename, const std::string& etag) {
  std::string target = "../../";
  for (char c : filename) {
    if (c == '/') target += "../";
  }
  target += "blobs/" + etag;
  fs::create_directories(pointer.parent_path());
  fs::path tmp = temp_path_for(pointer);
  std::error_code ec;
  fs::create_symlink(target, tmp, ec);
  if (!ec) fs::rename(tmp, pointer, ec);
  if (ec) {
    fs::remove(tmp);
    throw IoError("cannot create " + pointer.string() + " -> " + target + ": " + ec.message());
  }
}

void write_ref(const fs::path& repo_dir, const std::string& revision, const std::string& commit) {
  if (revision == commit) return;
  fs::path ref = repo_dir / "refs" / revision;
  std::ifstream in(ref);
  std::string old;
  if (in) std::getline(in, old);
  if (trim(old) == commit) return;  // untouched, so read-only shared caches keep working
  fs::create_directories(ref.parent_path());
  write_file_atomic(ref, commit);
}

struct FetchStats {
  int files = 0;
  int64_t bytes = 0;
};

// One file at a known commit into the snapshot; no request when it is already there.
fs::path fetch_at_commit(HttpClient& http, const HubOptions& o, const std::string& repo_id,
                         const std::string& commit, const std::string& filename,
                         FetchStats& stats) {
  fs::path repo_dir = repo_cache_path(o.cache_dir, repo_id);
  fs::path pointer = repo_dir / "snapshots" / commit / filename;
  if (fs::exists(pointer) && !o.force_download) return pointer;
  FileMetadata m = head_file(http, o, repo_id, commit, filename);
  fs::path blob = repo_dir / "blobs" / m.etag;
  if (!fs::exists(blob) || o.force_download) {
    UrlDownload d;
    d.url = m.location;
    // A redirect to another host is a signed CDN URL: the hub token must not travel there. A
    // same-host redirect (renamed repository, resolve cache) still needs it for private repos.
    if (host_of(m.location) == host_of(o.endpoint)) d.headers = auth_headers(o);
    // Forced: fetched and verified beside the cached blob, which stays usable until it is
    // replaced by the rename below (a failed transfer costs nothing).
    d.dest = o.force_download ? fs::path(blob.string() + ".force") : blob;
    // huggingface_hub's lock for this blob, so that xlt and Python never fetch it at once.
    d.lock_path = o.cache_dir / ".locks" / repo_dir.filename() / (m.etag + ".lock");
    d.expected_size = m.size;
    if (is_hex(m.etag, 64)) d.expected_sha256 = m.etag;  // LFS files: the etag is the sha256
    d.label = filename;
    d.offline_hint = offline_hint();
    d.progress = o.progress;
    d.timeout_seconds = o.timeout_seconds;
    d.max_retries = o.max_retries;
    UrlDownloadResult r = detail::download_url_with(http, d);
    if (!r.already_present) ++stats.files;
    stats.bytes += r.bytes_transferred;
    if (o.force_download) fs::rename(d.dest, blob);
  }
  link_pointer(pointer, filename, m.etag);
  return pointer;
}

std::vector<std::string> shards_of_index(const fs::path& index) {
  std::set<std::string> shards;
  for (const auto& [name, file] : detail::read_weight_map(index)) shards.insert(file);
  return {shards.begin(), shards.end()};
}

bool index_complete(const fs::path& index) {
  if (!fs::exists(index)) return false;
  try {
    for (const auto& s : shards_of_index(index)) {
      if (!fs::exists(index.parent_path() / s)) return false;
    }
    return true;
  } catch (const Error&) {
    return false;
  }
}

void validate_repo_id(const std::string& repo_id) {
  if (!is_valid_repo_id(repo_id)) {
    throw UsageError("'" + repo_id +
                     "' is not a valid Hugging Face repository id (expected name or org/name of "
                     "letters, digits, '-', '_', '.')");
  }
}

std::string offline_not_cached(const HubOptions& o, const std::string& repo_id,
                               const std::string& revision, const std::string& what) {
  return "offline mode (HF_HUB_OFFLINE=1): " + what + " of '" + repo_id + "' (revision '" +
         revision + "') is not in the cache " + o.cache_dir.string() +
         "; download it first with network access (`xlt download " + repo_id +
         "`) or unset HF_HUB_OFFLINE";
}

std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    // Lexically: fs::relative resolves the snapshot's symlinks into ../../blobs/<etag>, and
    // --include patterns match repository file names.
    if (fs::is_regular_file(it->path()))
      out.push_back(it->path().lexically_relative(dir).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A cache path through a file would otherwise end in "filesystem error: ... Not a directory"
// (an internal error) at the first folder created; say which path is wrong instead.
void check_cache_dir(const fs::path& cache) {
  std::error_code ec;
  for (fs::path p = cache; !p.empty(); p = p.parent_path()) {
    if (fs::exists(p, ec)) {
      if (!fs::is_directory(p, ec)) {
        throw UsageError("hub cache folder " + cache.string() +
                         (p == cache ? "" : ": " + p.string()) +
                         " exists and is not a folder (the cache is set by --cache-dir, "
                         "HF_HUB_CACHE or HF_HOME)");
      }
      return;
    }
    if (p == p.parent_path()) return;
  }
}

void create_cache_folder(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError("cannot create hub cache folder " + dir.string() + ": " + ec.message());
}

}  // namespace

HubOptions HubOptions::from_env() {
  HubOptions o;
  if (auto e = env("HF_ENDPOINT"); !e.empty()) o.endpoint = e;
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  o.token = read_token();
  o.cache_dir = hub_cache_dir().path;
  o.offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
  if (auto t = env("HF_HUB_DOWNLOAD_TIMEOUT"); !t.empty()) {
    try {
      o.timeout_seconds = std::max(1.0, std::stod(t));
    } catch (const std::exception&) {
      throw ConfigError("HF_HUB_DOWNLOAD_TIMEOUT: expected seconds, got '" + t + "'");
    }
  }
  return o;
}

std::vector<std::string> select_model_files(const std::vector<std::string>& repo_files) {
  static const std::set<std::string> kAlways = {"config.json",
                                                "generation_config.json",
                                                "tokenizer.json",
                                                "tokenizer_config.json",
                                                "special_tokens_map.json",
                                                "added_tokens.json",
                                                "vocab.txt",
                                                "vocab.json",
                                                "merges.txt",
                                                "sentencepiece.bpe.model"};
  std::set<std::string> present(repo_files.begin(), repo_files.end());
  std::string weights;
  for (const char* w : {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                        "pytorch_model.bin.index.json"}) {
    if (present.count(w)) {
      weights = w;
      break;
    }
  }
  std::vector<std::string> out;
  for (const auto& f : repo_files) {
    if (f.find('/') != std::string::npos) continue;
    bool spm = f.size() > 6 && f.compare(f.size() - 6, 6, ".model") == 0;
    if (kAlways.count(f) || spm || f == weights) out.push_back(f);
  }
  return out;
}

std::vector<std::string> filter_files(const std::vector<std::string>& repo_files,
                                      const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const auto& f : repo_files) {
    for (const auto& p : patterns) {
      if (::fnmatch(p.c_str(), f.c_str(), 0) == 0) {
        out.push_back(f);
        break;
      }
    }
  }
  return out;
}

bool snapshot_has_model(const fs::path& dir) {
  if (!fs::exists(dir / "config.json")) return false;
  return fs::exists(dir / "model.safetensors") ||
         index_complete(dir / "model.safetensors.index.json") ||
         fs::exists(dir / "pytorch_model.bin") ||
         index_complete(dir / "pytorch_model.bin.index.json");
}

SnapshotDownload download_model(const std::string& repo_id, const std::string& revision,
                                const std::vector<std::string>& include, const HubOptions& o) {
  validate_repo_id(repo_id);
  check_cache_dir(o.cache_dir);
  auto t0 = std::chrono::steady_clock::now();
  SnapshotDownload out;
  out.repo_id = repo_id;
  out.revision = revision;
  fs::path repo_dir = repo_cache_path(o.cache_dir, repo_id);

  if (o.offline && o.force_download) {
    throw UsageError("downloading '" + repo_id + "' again (--force) needs the network, and " +
                     "HF_HUB_OFFLINE is set");
  }
  if (o.offline) {
    auto snap = find_cached_snapshot(o.cache_dir, RepoRef{repo_id, revision});
    if (!snap) throw HubError(offline_not_cached(o, repo_id, revision, "a snapshot"));
    std::vector<std::string> all = files_under(snap->dir);
    out.files = include.empty() ? all : filter_files(all, include);
    if (include.empty() && !snapshot_has_model(snap->dir)) {
      throw HubError(offline_not_cached(o, repo_id, revision, "the config or weights"));
    }
    if (out.files.empty()) {
      throw HubError(offline_not_cached(o, repo_id, revision, "a file matching --include"));
    }
    out.snapshot_dir = snap->dir;
    out.commit = snap->commit;
    return out;
  }

  HttpClient http({o.timeout_seconds, offline_hint()});
  Listing listing = list_repo(http, o, repo_id, revision);
  out.commit = listing.commit;
  std::vector<std::string> files =
      include.empty() ? select_model_files(listing.files) : filter_files(listing.files, include);
  if (files.empty()) {
    std::string have;
    for (std::size_t i = 0; i < listing.files.size() && i < 20; ++i) have += " " + listing.files[i];
    throw HubError(include.empty()
                       ? "repository '" + repo_id +
                             "' has no model files (config.json, "
                             "model.safetensors, pytorch_model.bin); it has:" +
                             have
                       : "no file of '" + repo_id + "' matches --include; it has:" + have);
  }
  for (const auto& f : files) check_repo_filename(f, repo_id);
  create_cache_folder(repo_dir / "blobs");
  write_ref(repo_dir, revision, listing.commit);
  if (o.progress) {
    std::cerr << "xlt: " << repo_id << " @ " << revision << " (commit "
              << listing.commit.substr(0, 10) << "): " << files.size() << " file(s) into "
              << repo_dir.string() << "\n";
  }

  FetchStats stats;
  std::set<std::string> listed(listing.files.begin(), listing.files.end());
  std::set<std::string> queued(files.begin(), files.end());
  for (std::size_t i = 0; i < files.size(); ++i) {
    std::string f = files[i];
    fs::path p = fetch_at_commit(http, o, repo_id, listing.commit, f, stats);
    bool index = f == "model.safetensors.index.json" || f == "pytorch_model.bin.index.json";
    if (index && include.empty()) {
      for (const auto& shard : shards_of_index(p)) {
        check_repo_filename(shard, repo_id);
        if (!listed.count(shard)) {
          throw CheckpointError(f + " of '" + repo_id + "' names shard '" + shard +
                                "', which the repository does not have");
        }
        if (queued.insert(shard).second) files.push_back(shard);
      }
    }
  }
  out.files = files;
  out.snapshot_dir = repo_dir / "snapshots" / listing.commit;
  out.files_downloaded = stats.files;
  out.bytes_downloaded = stats.bytes;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

fs::path download_hub_file(const std::string& repo_id, const std::string& filename,
                           const std::string& revision, const HubOptions& o) {
  validate_repo_id(repo_id);
  check_repo_filename(filename, repo_id);
  check_cache_dir(o.cache_dir);
  fs::path repo_dir = repo_cache_path(o.cache_dir, repo_id);
  if (auto snap = find_cached_snapshot(o.cache_dir, RepoRef{repo_id, revision})) {
    // A commit's files never change, so a cached pinned file needs no request.
    if ((o.offline || is_commit_hash(revision)) && fs::exists(snap->dir / filename)) {
      return snap->dir / filename;
    }
  }
  if (o.offline) throw HubError(offline_not_cached(o, repo_id, revision, "'" + filename + "'"));
  HttpClient http({o.timeout_seconds, offline_hint()});
  FileMetadata m = head_file(http, o, repo_id, revision, filename);
  if (!is_commit_hash(m.commit)) {
    throw HubError("X-Repo-Commit '" + m.commit + "' from " + o.endpoint + " is not a commit hash");
  }
  create_cache_folder(repo_dir / "blobs");
  write_ref(repo_dir, revision, m.commit);
  FetchStats stats;
  return fetch_at_commit(http, o, repo_id, m.commit, filename, stats);
}

ModelLocation resolve_or_download(std::string_view model, const HubOptions& o,
                                  const std::vector<std::string>& include) {
  if (model.empty()) throw UsageError("empty model path or id");
  std::string id_part(model.substr(0, model.find('@')));
  std::error_code ec;
  bool path_like = model.front() == '/' || model.front() == '.' || model.front() == '~' ||
                   !is_valid_repo_id(id_part) || fs::exists(std::string(model), ec);
  HubCacheDir cache{o.cache_dir, "HubOptions.cache_dir"};
  // Local paths (and their "no such file" errors) are resolve_model_location's business.
  if (path_like) return resolve_model_location(model, cache);
  RepoRef ref = RepoRef::parse(model);
  if (!include.empty()) {
    SnapshotDownload d = download_model(ref.repo_id, ref.revision, include, o);
    return ModelLocation{d.snapshot_dir, true, ref.repo_id, ref.revision, d.commit};
  }
  if (auto snap = find_cached_snapshot(o.cache_dir, ref); snap && snapshot_has_model(snap->dir)) {
    return ModelLocation{snap->dir, true, ref.repo_id, ref.revision, snap->commit};
  }
  if (o.offline) throw HubError(offline_not_cached(o, ref.repo_id, ref.revision, "the model"));
  if (o.progress) {
    std::cerr << "xlt: " << ref.str() << " is not in the cache " << o.cache_dir.string()
              << "; downloading it from " << o.endpoint << "\n";
  }
  SnapshotDownload d = download_model(ref.repo_id, ref.revision, {}, o);
  return ModelLocation{d.snapshot_dir, true, ref.repo_id, ref.revision, d.commit};
}

}  // namespace xlt::io
