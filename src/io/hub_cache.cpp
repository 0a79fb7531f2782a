// Model location resolution: local paths and the Hugging Face hub cache (see hub_cache.h for the
// layout and the environment variables, which follow huggingface_hub's constants.py).
#include "xlt/io/hub_cache.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "xlt/core/error.h"

namespace xlt::io {
namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// os.path.expanduser for "~" and "~/...": huggingface_hub expands its variables the same way.
fs::path expand_user(const std::string& p) {
  if (p == "~" || p.rfind("~/", 0) == 0) {
    std::string home = env("HOME");
    if (!home.empty()) return fs::path(home) / p.substr(std::min<std::size_t>(2, p.size()));
  }
  return fs::path(p);
}

bool safe_revision(std::string_view rev) {
  if (rev.empty() || rev.front() == '/' || rev.back() == '/') return false;
  if (rev.find("..") != std::string_view::npos || rev.find('\\') != std::string_view::npos)
    return false;
  return std::all_of(rev.begin(), rev.end(), [](char c) { return c > ' ' && c != 0x7f; });
}

std::string read_ref(const fs::path& file) {
  std::ifstream in(file);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

HubCacheDir hub_cache_dir() {
  if (std::string v = env("HF_HUB_CACHE"); !v.empty()) return {expand_user(v), "HF_HUB_CACHE"};
  if (std::string v = env("HUGGINGFACE_HUB_CACHE"); !v.empty())
    return {expand_user(v), "HUGGINGFACE_HUB_CACHE"};
  if (std::string v = env("HF_HOME"); !v.empty()) return {expand_user(v) / "hub", "HF_HOME"};
  if (std::string v = env("XDG_CACHE_HOME"); !v.empty())
    return {expand_user(v) / "huggingface" / "hub", "XDG_CACHE_HOME"};
  return {expand_user("~/.cache/huggingface/hub"), "HOME"};
}

bool is_valid_repo_id(std::string_view id) {
  if (id.empty() || id.size() > 96) return false;
  if (id.find("--") != std::string_view::npos || id.find("..") != std::string_view::npos)
    return false;
  auto slash = id.find('/');
  if (slash != std::string_view::npos && id.find('/', slash + 1) != std::string_view::npos)
    return false;
  auto part_ok = [](std::string_view part) {
    if (part.empty()) return false;
    if (part.front() == '-' || part.front() == '.' || part.back() == '-' || part.back() == '.')
      return false;
    return std::all_of(part.begin(), part.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
  };
  if (slash == std::string_view::npos) return part_ok(id);
  return part_ok(id.substr(0, slash)) && part_ok(id.substr(slash + 1));
}

bool is_commit_hash(std::string_view rev) {
  return rev.size() == 40 && std::all_of(rev.begin(), rev.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

RepoRef RepoRef::parse(std::string_view spec) {
  RepoRef ref;
  auto at = spec.find('@');
  ref.repo_id = std::string(spec.substr(0, at));
  if (at != std::string_view::npos) ref.revision = std::string(spec.substr(at + 1));
  if (!is_valid_repo_id(ref.repo_id))
    throw UsageError("'" + std::string(spec) + "': not a valid Hugging Face model id (expected " +
                     "org/name or org/name@revision)");
  if (!safe_revision(ref.revision))
    throw UsageError("'" + std::string(spec) + "': invalid revision '" + ref.revision + "'");
  return ref;
}

std::string repo_folder_name(std::string_view repo_id, RepoType type) {
  std::string prefix = type == RepoType::kModel     ? "models"
                       : type == RepoType::kDataset ? "datasets"
                                                    : "spaces";
  // huggingface_hub: "models--" + repo_id with "/" replaced by "--".
  std::string out;
  out += prefix + "--";
  for (char c : std::string(repo_id)) {
    if (c == '/') {
      out += "--";
    } else {
      out += c;
    }
  }
  return out;
}

fs::path repo_cache_path(const fs::path& cache, std::string_view repo_id, RepoType type) {
  return cache / repo_folder_name(repo_id, type);
}

std::optional<CachedSnapshot> find_cached_snapshot(const fs::path& cache, const RepoRef& ref,
                                                   RepoType type) {
  if (!safe_revision(ref.revision)) return std::nullopt;
  fs::path repo = repo_cache_path(cache, ref.repo_id, type);
  std::string commit = ref.revision;
  fs::path ref_file = repo / "refs" / ref.revision;
  std::error_code ec;
  if (fs::is_regular_file(ref_file, ec)) {
    commit = read_ref(ref_file);
    if (!is_commit_hash(commit) && !safe_revision(commit)) return std::nullopt;
  }
  fs::path dir = repo / "snapshots" / commit;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  return CachedSnapshot{dir, commit};
}

std::vector<std::string> cached_revisions(const fs::path& cache, std::string_view repo_id,
                                          RepoType type) {
  std::vector<std::string> out;
  fs::path repo = repo_cache_path(cache, repo_id, type);
  std::error_code ec;
  for (const char* sub : {"refs", "snapshots"}) {
    fs::path root = repo / sub;
    if (!fs::is_directory(root, ec)) continue;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      bool leaf = std::string(sub) == "refs" ? it->is_regular_file(ec) : it.depth() == 0;
      if (leaf)
        out.push_back(std::string(sub) + "/" + it->path().lexically_relative(root).string());
      if (std::string(sub) == "snapshots") it.disable_recursion_pending();
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

ModelLocation resolve_model_location(std::string_view spec) {
  return resolve_model_location(spec, hub_cache_dir());
}

ModelLocation resolve_model_location(std::string_view spec, const HubCacheDir& cache) {
  if (spec.empty()) throw UsageError("empty model path or id");
  ModelLocation loc;
  fs::path local = expand_user(std::string(spec));
  std::error_code ec;
  if (fs::exists(local, ec)) {
    loc.path = local;
    return loc;
  }
  std::string id_part(spec.substr(0, spec.find('@')));
  const bool looks_like_path = spec.front() == '/' || spec.front() == '.' || spec.front() == '~' ||
                               !is_valid_repo_id(id_part);
  std::string local_abs = fs::absolute(local, ec).lexically_normal().string();
  if (looks_like_path) throw FileNotFound(local_abs + ": no such file or folder");

  RepoRef ref = RepoRef::parse(spec);
  if (auto snap = find_cached_snapshot(cache.path, ref)) {
    loc.path = snap->dir;
    loc.from_hub_cache = true;
    loc.repo_id = ref.repo_id;
    loc.revision = ref.revision;
    loc.commit = snap->commit;
    return loc;
  }
  fs::path repo = repo_cache_path(cache.path, ref.repo_id);
  std::string msg = "model '" + ref.str() + "' not found: no local folder " + local_abs +
                    ", and not in the Hugging Face cache " + cache.path.string() +
                    (cache.decided_by == "HOME"
                         ? std::string(" (the default; set HF_HUB_CACHE or HF_HOME to change)")
                         : " (chosen by $" + cache.decided_by + ")") +
                    ": ";
  if (!fs::is_directory(repo, ec)) {
    msg += "no folder " + repo.filename().string();
  } else {
    msg += "no snapshot for revision '" + ref.revision + "' (looked at " +
           (repo / "refs" / ref.revision).string() + " and snapshots/); present: ";
    auto revs = cached_revisions(cache.path, ref.repo_id);
    if (revs.empty()) msg += "nothing";
    for (std::size_t i = 0; i < revs.size(); ++i) msg += (i ? ", " : "") + revs[i];
  }
  msg += ". Download it first: `xlt download " + ref.str() + "`";
  throw IoError(msg);
}

}  // namespace xlt::io
