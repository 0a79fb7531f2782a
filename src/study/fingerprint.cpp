// Content digests of model/data files and the fingerprints that decide whether a study unit is
// up to date. Every file is hashed whole with SHA-256 (OpenSSL, ~1-2 GB/s), so any edit is seen;
// a file in the Hugging Face cache whose blob is named by its SHA-256 (LFS weights, checked by
// the download) is identified by that name instead of being read again.
#include <fstream>
#include <set>

#include "study/internal.h"
#include "xlt/core/error.h"
#include "xlt/io/dataset_download.h"
#include "xlt/io/hub.h"

namespace xlt::study::detail {
namespace {

bool is_sha256_name(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The SHA-256 a Hugging Face cache file is named by: snapshots/<rev>/<file> links to
// blobs/<sha256> for LFS files (git-tracked small files are named by their git blob hash, 40
// hex, and are hashed here). "" when `path` is not such a link.
std::string hf_blob_sha256(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_symlink(path, ec)) return "";
  const fs::path target = fs::canonical(path, ec);
  if (ec || target.parent_path().filename() != "blobs") return "";
  const std::string name = target.filename().string();
  return is_sha256_name(name) ? name : "";
}

const std::set<std::string>& tokenizer_files() {
  static const std::set<std::string> f = {"vocab.txt",
                                          "tokenizer.json",
                                          "tokenizer_config.json",
                                          "special_tokens_map.json",
                                          "added_tokens.json",
                                          "sentencepiece.bpe.model",
                                          "spiece.model",
                                          "config.json"};
  return f;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  return io::sha256_hex(data);
}

json file_digest(const fs::path& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw IoError(path.string() + ": cannot read: " + ec.message());
  json d = {{"bytes", size}};
  const std::string blob = hf_blob_sha256(path);
  if (!blob.empty()) {
    d["method"] = "hf-blob-name";
    d["sha256"] = blob;
    return d;
  }
  if (!std::ifstream(path, std::ios::binary)) throw IoError(path.string() + ": cannot open");
  d["method"] = "full";
  d["sha256"] = io::sha256_file(path);
  return d;
}

json tree_digest(const fs::path& path) {
  if (!fs::is_directory(path)) return file_digest(path);
  std::vector<std::pair<std::string, fs::path>> files;
  for (auto it =
           fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (fs::is_regular_file(it->path())) {
      files.emplace_back(fs::relative(it->path(), path).generic_string(), it->path());
    }
  }
  std::sort(files.begin(), files.end());
  std::string combined;
  uintmax_t bytes = 0;
  for (const auto& [rel, p] : files) {
    const json d = file_digest(p);
    bytes += d["bytes"].get<uintmax_t>();
    combined += rel + "=" + d["sha256"].get<std::string>() + "\n";
  }
  return {{"files", files.size()}, {"bytes", bytes}, {"sha256", sha256_hex(combined)}};
}

json tokenizer_digest(const fs::path& path) {
  if (!fs::is_directory(path)) {
    // The loader reads the settings files beside a tokenizer file too (lower-casing, special
    // tokens, added tokens). Without any, the file's digest alone, as before they counted.
    json out = json::object();
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    for (const char* name :
         {"tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "config.json"}) {
      if (fs::is_regular_file(dir / name)) out[name] = file_digest(dir / name)["sha256"];
    }
    if (out.empty()) return file_digest(path);
    out[path.filename().string()] = file_digest(path)["sha256"];
    return out;
  }
  json out = json::object();
  for (const auto& entry : fs::directory_iterator(path)) {
    const std::string name = entry.path().filename().string();
    const bool spm = entry.path().extension() == ".model";
    if ((tokenizer_files().count(name) || spm) && fs::is_regular_file(entry.path())) {
      out[name] = file_digest(entry.path())["sha256"];
    }
  }
  return out;
}

json data_digest(const std::string& spec_or_path) {
  if (spec_or_path.empty()) return nullptr;
  if (io::is_dataset_spec(spec_or_path)) {
    const auto files = io::resolve_dataset_spec(spec_or_path);
    json d = {{"spec", spec_or_path}, {"files", json::array()}};
    for (const auto& f : files.files) d["files"].push_back(file_digest(f)["sha256"]);
    return d;
  }
  return file_digest(spec_or_path)["sha256"];
}

std::string fingerprint_of(const json& inputs) {
  return sha256_hex(inputs.dump());
}

bool is_legacy_fingerprint(const json& fingerprint) {
  // xlt before the SHA-256 digests wrote FNV-1a 64 fingerprints: 16 hex digits.
  return fingerprint.is_string() && fingerprint.get<std::string>().size() == 16;
}

std::vector<std::string> changed_keys(const json& before, const json& after) {
  std::vector<std::string> out;
  if (!before.is_object() || !after.is_object()) {
    if (before != after) out.push_back("(all)");
    return out;
  }
  std::set<std::string> keys;
  for (const auto& [k, v] : before.items()) keys.insert(k);
  for (const auto& [k, v] : after.items()) keys.insert(k);
  for (const auto& k : keys) {
    const json a = before.contains(k) ? before[k] : json();
    const json b = after.contains(k) ? after[k] : json();
    if (a == b) continue;
    if (a.is_object() && b.is_object()) {
      std::set<std::string> sub;
      for (const auto& [kk, v] : a.items()) sub.insert(kk);
      for (const auto& [kk, v] : b.items()) sub.insert(kk);
      for (const auto& kk : sub) {
        if (a.value(kk, json()) != b.value(kk, json())) out.push_back(k + "." + kk);
      }
    } else {
      out.push_back(k);
    }
  }
  return out;
}

}  // namespace xlt::study::detail
