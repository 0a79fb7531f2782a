// Content digests of model/data files and the fingerprints that decide whether a study unit is
// up to date. FNV-1a 64 is not cryptographic; it only has to notice changed inputs, and it is
// fast enough to digest every data file whole (model weights are sampled, see internal.h).
#include <fstream>
#include <set>

#include "study/internal.h"
#include "xlt/core/error.h"
#include "xlt/io/dataset_download.h"

namespace xlt::study::detail {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;  // 0xcbf29ce484222325
constexpr uint64_t kFnvPrime = 1099511628211ull;
constexpr uintmax_t kSampleBytes = 64u << 10;
constexpr int kSamples = 16;

uint64_t fnv_update(uint64_t h, const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= kFnvPrime;
  }
  return h;
}

std::string hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
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

std::string fnv1a64_hex(std::string_view data) {
  return hex(fnv_update(kFnvOffset, data.data(), data.size()));
}

json file_digest(const fs::path& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw IoError(path.string() + ": cannot read: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open");
  uint64_t h = kFnvOffset;
  std::string buf;
  json d = {{"bytes", size}};
  if (size <= kFullDigestBytes) {
    buf.resize(1 << 20);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      h = fnv_update(h, buf.data(), static_cast<size_t>(in.gcount()));
    }
    d["method"] = "full";
  } else {
    // Size and mtime first, then evenly spaced samples including the first and last bytes.
    const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
    const std::string meta = std::to_string(size) + ":" + std::to_string(mtime);
    h = fnv_update(h, meta.data(), meta.size());
    buf.resize(kSampleBytes);
    for (int i = 0; i < kSamples; ++i) {
      const uintmax_t pos = (size - kSampleBytes) / (kSamples - 1) * static_cast<uintmax_t>(i);
      in.clear();
      in.seekg(static_cast<std::streamoff>(pos));
      in.read(buf.data(), static_cast<std::streamsize>(kSampleBytes));
      h = fnv_update(h, buf.data(), static_cast<size_t>(in.gcount()));
    }
    d["method"] = "sampled";
  }
  d["fnv1a64"] = hex(h);
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
    combined += rel + "=" + d["fnv1a64"].get<std::string>() + "\n";
  }
  return {{"files", files.size()}, {"bytes", bytes}, {"fnv1a64", fnv1a64_hex(combined)}};
}

json tokenizer_digest(const fs::path& path) {
  if (!fs::is_directory(path)) return file_digest(path);
  json out = json::object();
  for (const auto& entry : fs::directory_iterator(path)) {
    const std::string name = entry.path().filename().string();
    const bool spm = entry.path().extension() == ".model";
    if ((tokenizer_files().count(name) || spm) && fs::is_regular_file(entry.path())) {
      out[name] = file_digest(entry.path())["fnv1a64"];
    }
  }
  return out;
}

json data_digest(const std::string& spec_or_path) {
  if (spec_or_path.empty()) return nullptr;
  if (io::is_dataset_spec(spec_or_path)) {
    const auto files = io::resolve_dataset_spec(spec_or_path);
    json d = {{"spec", spec_or_path}, {"files", json::array()}};
    for (const auto& f : files.files) d["files"].push_back(file_digest(f)["fnv1a64"]);
    return d;
  }
  return file_digest(spec_or_path)["fnv1a64"];
}

std::string fingerprint_of(const json& inputs) {
  return fnv1a64_hex(inputs.dump());
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
