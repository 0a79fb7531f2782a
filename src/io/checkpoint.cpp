// A checkpoint's weights across one or more safetensors files: a single model.safetensors or the
// shards named by model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor: file}}).
// The index and the shards must agree exactly: every listed tensor in its shard, no unlisted or
// repeated tensors, so a half-copied sharded download fails on open rather than at load time.
#include <algorithm>
#include <set>

#include "core/json_strict.h"
#include "io/weight_map.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/io/safetensors.h"

namespace xlt::io {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

[[noreturn]] void fail(const fs::path& file, const std::string& what) {
  throw CheckpointError(file.string() + ": " + what);
}

}  // namespace

namespace detail {

std::map<std::string, std::string> read_weight_map(const fs::path& index) {
  std::string text = read_file(index);
  nlohmann::ordered_json j;
  try {
    j = xlt::detail::parse_json_strict(text);
  } catch (const xlt::detail::JsonParseFailure& e) {
    fail(index, xlt::detail::describe(e));
  }
  if (!j.is_object()) fail(index, "expected a JSON object");
  auto wm = j.find("weight_map");
  if (wm == j.end()) fail(index, "missing 'weight_map'");
  if (!wm->is_object()) fail(index, "'weight_map' must be an object");
  std::map<std::string, std::string> out;
  for (const auto& [name, file] : wm->items()) {
    if (!file.is_string())
      fail(index, "weight_map entry '" + name + "' must be a file name, found " +
                      xlt::detail::json_type_name(file));
    fs::path shard = file.get<std::string>();
    // Shards live beside the index; refusing other paths keeps a crafted index from reading
    // arbitrary files.
    if (shard.empty() || shard.is_absolute() ||
        shard.lexically_normal().string().rfind("..", 0) == 0)
      fail(index, "weight_map entry '" + name + "': shard '" + shard.string() +
                      "' must be a file name relative to the index");
    out[name] = shard.string();
  }
  return out;
}

}  // namespace detail

Checkpoint Checkpoint::open(const fs::path& path) {
  Checkpoint ck;
  fs::path target = path;
  if (fs::is_directory(path)) {
    // The single file first where both are present, as transformers' from_pretrained does.
    if (fs::exists(path / kSingleFile)) {
      target = path / kSingleFile;
    } else if (fs::exists(path / kIndexFile)) {
      target = path / kIndexFile;
    } else if (fs::exists(path / "pytorch_model.bin") ||
               fs::exists(path / "pytorch_model.bin.index.json")) {
      throw CheckpointError(path.string() + ": only PyTorch pickle weights (pytorch_model.bin) " +
                            "here; xlt reads safetensors: convert them first with `xlt convert " +
                            path.string() + " --out DIR` (or in Python " +
                            "model.save_pretrained(dir, safe_serialization=True))");
    } else {
      throw CheckpointError(path.string() + ": no " + kSingleFile + " or " + kIndexFile +
                            " in this folder");
    }
  } else if (!fs::exists(path)) {
    throw FileNotFound(path.string() + ": no such file or folder");
  }

  if (target.extension() != ".json") {
    ck.files_.push_back(SafetensorsFile::open(target));
  } else {
    std::map<std::string, std::string> weight_map = detail::read_weight_map(target);
    std::set<std::string> shard_names;
    for (const auto& [name, shard] : weight_map) shard_names.insert(shard);
    std::map<std::string, const SafetensorsFile*> shard_of;
    for (const std::string& shard : shard_names) {
      fs::path shard_path = target.parent_path() / shard;
      if (!fs::exists(shard_path))
        fail(target, "shard '" + shard + "' listed in weight_map does not exist");
      ck.files_.push_back(SafetensorsFile::open(shard_path));
      shard_of[shard] = ck.files_.back().get();
    }
    for (const auto& [name, shard] : weight_map) {
      if (!shard_of[shard]->contains(name))
        fail(target, "tensor '" + name + "' is listed in shard '" + shard +
                         "' but that file does not hold it");
    }
    for (const auto& file : ck.files_) {
      for (const std::string& name : file->names()) {
        auto it = weight_map.find(name);
        if (it == weight_map.end())
          fail(file->path(),
               "tensor '" + name + "' is not listed in " + target.filename().string());
        if (target.parent_path() / it->second != file->path())
          fail(file->path(), "tensor '" + name + "' is also in this shard, but " +
                                 target.filename().string() + " assigns it to '" + it->second +
                                 "'");
      }
    }
  }

  for (const auto& file : ck.files_) {
    for (const std::string& name : file->names()) {
      if (!ck.index_.emplace(name, &file->tensor(name)).second)
        fail(file->path(), "tensor '" + name + "' also appears in another shard");
    }
  }
  return ck;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, view] : index_) out.push_back(name);
  return out;
}

bool Checkpoint::contains(std::string_view name) const {
  return find(name) != nullptr;
}

const TensorView* Checkpoint::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::tensor(std::string_view name) const {
  if (const TensorView* v = find(name)) return *v;
  std::string where = files_.empty() ? std::string("checkpoint") : files_.front()->path().string();
  throw CheckpointError(where + ": no tensor named '" + std::string(name) + "'");
}

std::size_t Checkpoint::total_bytes() const {
  std::size_t n = 0;
  for (const auto& f : files_) n += f->file_size();
  return n;
}

}  // namespace xlt::io
