// Dataset archives: download, verify, unpack, record; and dataset specs resolved against the
// data home (see include/xlt/io/dataset_download.h).
#include "xlt/io/dataset_download.h"

#include <zip.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/json_strict.h"
#include "core/strings.h"
#include "io/hub_http.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/core/lock.h"
#include "xlt/core/progress.h"
#include "xlt/io/hub.h"
#include "xlt/version.h"

namespace xlt::io {
using xlt::detail::ascii_lower;
namespace fs = std::filesystem;

namespace {

std::string env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? std::string(v) : std::string();
}

const std::vector<std::string>& xnli_languages() {
  static const std::vector<std::string> langs = {"ar", "bg", "de", "el", "en", "es", "fr", "hi",
                                                 "ru", "sw", "th", "tr", "ur", "vi", "zh"};
  return langs;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The record of earlier downloads. It is xlt's own file; a damaged one is reported rather than
// silently replaced (which would forget the other datasets' entries).
nlohmann::ordered_json read_manifest(const fs::path& file) {
  if (!fs::exists(file)) return nlohmann::ordered_json::object();
  nlohmann::ordered_json j;
  try {
    j = xlt::detail::parse_json_strict(read_file(file));
  } catch (const xlt::detail::JsonParseFailure& e) {
    throw DataError(file.string() + ": " + xlt::detail::describe(e) +
                    " (delete the file to start a new record)");
  }
  if (!j.is_object()) {
    throw DataError(file.string() + ": expected a JSON object, found " +
                    xlt::detail::json_type_name(j) + " (delete the file to start a new record)");
  }
  return j;
}

// Our entry of the manifest, read back when the data is already there: a hand-edited or damaged
// entry is reported naming the field (nlohmann's type_error would be an internal error).
void check_manifest_entry(const nlohmann::ordered_json& m, const fs::path& file,
                          const std::string& name) {
  auto bad = [&](const std::string& field, const std::string& expected,
                 const nlohmann::ordered_json& found) {
    throw DataError(file.string() + ": entry '" + name + "'" +
                    (field.empty() ? "" : ", field '" + field + "'") + ": expected " + expected +
                    ", found " + xlt::detail::json_type_name(found) +
                    " (delete the entry, or run `xlt download-data " + name + " --force`)");
  };
  if (!m.is_object()) bad("", "an object", m);
  if (auto f = m.find("files"); f != m.end()) {
    if (!f->is_array()) bad("files", "a list of file names", *f);
    for (const auto& x : *f) {
      if (!x.is_string()) bad("files", "a list of file names (strings)", x);
    }
  }
  if (auto b = m.find("bytes"); b != m.end() && !b->is_number_integer())
    bad("bytes", "an integer", *b);
  if (auto h = m.find("sha256"); h != m.end() && !h->is_string()) bad("sha256", "a string", *h);
}

// An overriding checksum: 64 hex digits, compared lower-case as the download's own sum is
// printed (an upper-case value made a valid kept archive fail as a mismatch and be deleted).
std::string checksum_override(const std::string& variable) {
  std::string v = env(variable);
  if (v.empty()) return v;
  bool hex = v.size() == 64 &&
             std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
  if (!hex) {
    throw ConfigError(variable + ": expected a SHA-256 of 64 hexadecimal digits, got '" + v +
                      "' (" + std::to_string(v.size()) + " characters)");
  }
  return ascii_lower(v);
}

// Adds or replaces one dataset's entry. Re-read under a lock on the manifest itself, right
// before the atomic write: two downloads of different datasets into the same folder hold
// different dataset locks, and each writing the copy it read at its start lost the other's entry.
void record_in_manifest(const fs::path& file, const std::string& name,
                        const nlohmann::ordered_json& entry) {
  FileLock lock(file.parent_path() / ".manifest.lock", "");
  nlohmann::ordered_json manifest = read_manifest(file);
  manifest[name] = entry;
  write_file_atomic(file, manifest.dump(2) + "\n");
}

// A zip entry name becomes a path under the destination: it must stay there.
bool safe_entry(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string::npos) return false;
  std::stringstream parts(name);
  for (std::string part; std::getline(parts, part, '/');) {
    if (part == "..") return false;
  }
  return true;
}

bool macos_metadata(const std::string& name) {
  if (name.rfind("__MACOSX/", 0) == 0) return true;
  auto slash = name.rfind('/', name.size() > 1 ? name.size() - 2 : 0);
  std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  return base.rfind("._", 0) == 0 || base == ".DS_Store";
}

}  // namespace

const std::vector<DatasetSource>& dataset_sources() {
  // Sizes and SHA-256 sums as published by TensorFlow Datasets (url_checksums/xnli.txt and
  // multi_nli.txt) and, for the fbaipublicfiles URL, independently by other pinned mirrors; see
  // docs/download.md.
  static const std::vector<DatasetSource> sources = {
      {"xnli",
       "https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip",
       "XLT_XNLI_URL",
       "XLT_XNLI_SHA256",
       17865352,
       "4ba1d5e1afdb7161f0f23c66dc787802ccfa8a25a3ddd3b165a35e50df346ab1",
       "XNLI-1.0",
       {"xnli.dev.tsv", "xnli.test.tsv"},
       "CC BY-NC 4.0"},
      {"multinli",
       "https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip",
       "XLT_MULTINLI_URL",
       "XLT_MULTINLI_SHA256",
       226850426,
       "049f507b9e36b1fcb756cfd5aeb3b7a0cfcb84bf023793652987f7e7e0957822",
       "multinli_1.0",
       {"multinli_1.0_train.jsonl", "multinli_1.0_dev_matched.jsonl",
        "multinli_1.0_dev_mismatched.jsonl"},
       "OANC (mostly free), CC BY-SA 3.0 and CC BY 3.0 parts; see the MultiNLI paper"},
  };
  return sources;
}

const DatasetSource& dataset_source(std::string_view name) {
  std::string n(name);
  if (n == "mnli" || n == "multi_nli") n = "multinli";
  for (const auto& s : dataset_sources()) {
    if (s.name == n) return s;
  }
  throw UsageError("unknown dataset '" + std::string(name) + "' (known: xnli, multinli)");
}

// Where default_data_home() took its answer from, for messages.
static std::string data_home_origin() {
  if (!env("XLT_DATA_HOME").empty()) return "set by XLT_DATA_HOME";
  if (!env("XDG_CACHE_HOME").empty()) return "from XDG_CACHE_HOME; XLT_DATA_HOME sets another";
  return "the default; XLT_DATA_HOME sets another";
}

fs::path default_data_home() {
  if (auto v = env("XLT_DATA_HOME"); !v.empty()) return v;
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "xlt" / "data";
  std::string home = env("HOME");
  return fs::path(home.empty() ? "/" : home) / ".cache" / "xlt" / "data";
}

std::vector<std::string> unzip_archive(const fs::path& zip, const fs::path& dest, bool progress) {
  int err = 0;
  zip_t* z = zip_open(zip.c_str(), ZIP_RDONLY, &err);
  if (!z) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    std::string why = zip_error_strerror(&ze);
    zip_error_fini(&ze);
    throw DataError(zip.string() + ": not a readable zip archive (" + why + ")");
  }
  struct Closer {
    zip_t* z;
    ~Closer() { zip_discard(z); }
  } closer{z};
  zip_int64_t n = zip_get_num_entries(z, 0);
  int64_t total = 0;
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    if (zip_stat_index(z, static_cast<zip_uint64_t>(i), 0, &st) == 0)
      total += static_cast<int64_t>(st.size);
  }
  Progress bar("unpacking " + zip.filename().string(), total, "B", progress);
  std::vector<std::string> files;
  std::vector<char> buf(1 << 20);
  for (zip_int64_t i = 0; i < n; ++i) {
    std::string name = zip_get_name(z, static_cast<zip_uint64_t>(i), 0);
    if (macos_metadata(name)) continue;
    if (!safe_entry(name)) {
      throw DataError(zip.string() + ": refusing entry '" + name +
                      "', which would be written outside " + dest.string());
    }
    fs::path out = dest / name;
    if (name.back() == '/') {
      fs::create_directories(out);
      continue;
    }
    fs::create_directories(out.parent_path());
    zip_file_t* f = zip_fopen_index(z, static_cast<zip_uint64_t>(i), 0);
    if (!f)
      throw DataError(zip.string() + ": cannot open entry '" + name + "': " + zip_strerror(z));
    std::ofstream os(out, std::ios::binary | std::ios::trunc);
    zip_int64_t got;
    while ((got = zip_fread(f, buf.data(), buf.size())) > 0) {
      os.write(buf.data(), got);
      bar.advance(got);
    }
    std::string zerr = got < 0 ? zip_file_strerror(f) : "";
    zip_fclose(f);
    if (got < 0) throw DataError(zip.string() + ": corrupt entry '" + name + "': " + zerr);
    os.flush();
    if (!os) throw IoError("cannot write " + out.string() + " (disk full?)");
    files.push_back(name);
  }
  bar.finish();
  return files;
}

DatasetDownloadResult download_dataset(std::string_view name, const DatasetDownloadOptions& o) {
  const DatasetSource& src = dataset_source(name);
  fs::path home = o.dir.empty() ? default_data_home() : o.dir;
  // A --dir that is a file is a usage error, not a filesystem exception; a failed first
  // download leaves no empty data home behind.
  CreatedFolders created(prepare_output_folder(
      home, o.dir.empty() ? "data home (" + data_home_origin() + ")" : "--dir"));
  DatasetDownloadResult r;
  r.dataset_dir = home / src.name;
  r.url = env(src.url_env).empty() ? src.url : env(src.url_env);
  std::string sha_override = checksum_override(src.sha256_env);
  std::string expected_sha = sha_override.empty() ? src.sha256 : sha_override;
  // A pinned size belongs to the pinned file; an overriding checksum names another file.
  int64_t expected_size = sha_override.empty() ? src.size : -1;
  r.checksum_source = sha_override.empty() ? "pinned" : src.sha256_env;

  FileLock lock(home / ("." + src.name + ".lock"),
                o.progress ? "downloading dataset " + src.name : "");
  fs::path manifest_path = home / "manifest.json";
  nlohmann::ordered_json manifest = read_manifest(manifest_path);
  if (!o.force && manifest.contains(src.name)) {
    const auto& m = manifest[src.name];
    check_manifest_entry(m, manifest_path, src.name);
    bool complete = m.contains("files") && m["files"].is_array();
    for (const auto& f : src.required)
      complete = complete && fs::exists(r.dataset_dir / src.folder / f);
    if (complete) {
      r.already_present = true;
      r.sha256 = m.value("sha256", "");
      r.bytes = m.value("bytes", int64_t{0});
      r.files = m["files"].get<std::vector<std::string>>();
      return r;
    }
  }

  std::string archive_name = r.url.substr(r.url.rfind('/') + 1);
  if (archive_name.empty() || archive_name.find("..") != std::string::npos)
    archive_name = src.name + ".zip";
  fs::path archive = home / ".downloads" / archive_name;
  if (o.force) {
    // A partial download from an earlier run too: --force starts from byte 0.
    fs::remove(archive);
    fs::remove(archive.string() + ".incomplete");
  }
  UrlDownload d;
  d.url = r.url;
  d.dest = archive;
  d.expected_size = expected_size;
  d.expected_sha256 = expected_sha;
  d.label = archive_name;
  d.progress = o.progress;
  d.timeout_seconds = o.timeout_seconds;
  d.max_retries = o.max_retries;
  UrlDownloadResult got = download_url(d);
  r.sha256 = got.sha256;
  r.bytes = got.size;
  if (got.already_present && got.sha256 != expected_sha) {
    // A kept archive from an earlier run that no longer matches: never unpack it.
    fs::remove(archive);
    throw HubError(archive.string() + ": checksum mismatch: expected sha256 " + expected_sha +
                   ", got " + got.sha256 + "; the file was deleted, run the command again");
  }

  fs::path partial = home / ("." + src.name + ".partial");
  fs::remove_all(partial);
  std::vector<std::string> files = unzip_archive(archive, partial, o.progress);
  for (const auto& f : src.required) {
    if (!fs::exists(partial / src.folder / f)) {
      fs::remove_all(partial);
      throw DataError(archive.string() + " (from " + r.url + ") has no " + src.folder + "/" + f +
                      ": not the " + src.name + " archive xlt expects");
    }
  }
  fs::remove_all(r.dataset_dir);
  fs::rename(partial, r.dataset_dir);
  fsync_path(home);
  if (!o.keep_archive) fs::remove(archive);
  std::sort(files.begin(), files.end());
  r.files = files;

  record_in_manifest(manifest_path, src.name,
                     {{"url", r.url},
                      {"archive", archive_name},
                      {"bytes", r.bytes},
                      {"sha256", r.sha256},
                      {"checksum", r.checksum_source},
                      {"files", files},
                      {"downloaded", utc_now()},
                      {"xlt_version", XLT_VERSION},
                      {"license", src.license}});
  return r;
}

bool is_dataset_spec(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  std::string name(s.substr(0, colon));
  return name == "xnli" || name == "multinli" || name == "mnli" || name == "multi_nli";
}

DatasetFiles resolve_dataset_spec(std::string_view spec, const fs::path& data_home) {
  std::string s(spec);
  auto fail = [&](const std::string& why) -> void {
    throw UsageError("dataset spec '" + s + "': " + why +
                     " (expected e.g. xnli:lang=hi:split=test or multinli:split=train)");
  };
  std::vector<std::string> parts;
  std::stringstream ss(s);
  for (std::string p; std::getline(ss, p, ':');) parts.push_back(p);
  if (parts.empty() || parts[0].empty()) fail("no dataset name");
  const DatasetSource& src = dataset_source(parts[0]);
  DatasetFiles out;
  out.dataset = src.name;
  std::string split = src.name == "xnli" ? "test" : "train";
  for (std::size_t i = 1; i < parts.size(); ++i) {
    auto eq = parts[i].find('=');
    if (eq == std::string::npos || eq == 0) fail("'" + parts[i] + "' is not key=value");
    std::string key = parts[i].substr(0, eq), value = parts[i].substr(eq + 1);
    if (value.empty()) fail("empty value for " + key);
    if (key == "split") {
      split = value;
    } else if (key == "lang" || key == "langs" || key == "language") {
      std::stringstream ls(value);
      for (std::string l; std::getline(ls, l, ',');) out.languages.push_back(l);
    } else {
      out.options[key] = value;
    }
  }
  if (src.name == "xnli") {
    if (split == "validation") split = "dev";
    if (split != "dev" && split != "test")
      fail("XNLI splits are dev and test, not '" + split + "'");
    for (const auto& l : out.languages) {
      const auto& all = xnli_languages();
      if (std::find(all.begin(), all.end(), l) == all.end()) {
        fail("XNLI has no language '" + l + "' (it has " + join(all, ",") + ")");
      }
    }
    out.format = "xnli-tsv";
    out.files = {data_home / "xnli" / src.folder / ("xnli." + split + ".tsv")};
  } else {
    if (split == "validation_matched" || split == "dev" || split == "validation")
      split = "dev_matched";
    if (split == "validation_mismatched") split = "dev_mismatched";
    if (split != "train" && split != "dev_matched" && split != "dev_mismatched") {
      fail("MultiNLI splits are train, dev_matched and dev_mismatched, not '" + split + "'");
    }
    for (const auto& l : out.languages) {
      if (l != "en") fail("MultiNLI is English only, not '" + l + "'");
    }
    out.format = "mnli-jsonl";
    out.files = {data_home / "multinli" / src.folder / ("multinli_1.0_" + split + ".jsonl")};
  }
  out.split = split;
  for (const auto& f : out.files) {
    if (!fs::exists(f)) {
      throw DataError("dataset spec '" + s + "': " + f.string() +
                      " does not exist; download the data first: `xlt download-data " + src.name +
                      "` (data home " + data_home.string() +
                      (data_home == default_data_home() ? "; " + data_home_origin() : "") + ")");
    }
  }
  return out;
}

}  // namespace xlt::io
