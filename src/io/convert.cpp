// pytorch_model.bin -> safetensors (see include/xlt/io/convert.h).
#include "xlt/io/convert.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "io/tied_names.h"
#include "io/weight_map.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/core/progress.h"
#include "xlt/io/hub.h"
#include "xlt/io/safetensors.h"
#include "xlt/io/torch_pickle.h"

namespace xlt::io {
using xlt::detail::ends_with;
namespace fs = std::filesystem;

namespace {

struct Source {
  fs::path dir;                                   // where config/tokenizer files are
  std::vector<fs::path> shards;                   // .bin files, in order
  std::vector<std::string> shard_names;           // as the index names them, when sharded
  fs::path index;                                 // pytorch_model.bin.index.json, when sharded
  std::map<std::string, std::string> weight_map;  // of `index`: tensor -> shard file name
};

[[noreturn]] void fail(const fs::path& file, const std::string& what) {
  throw CheckpointError(file.string() + ": " + what);
}

// The index and the opened shards must agree exactly, as io::Checkpoint::open demands of
// sharded safetensors (same wording): a tensor the index lists but its shard lacks would be
// silently missing from the output, and an unlisted one would be converted without notice.
void check_against_index(const Source& src, const std::vector<TorchBinCheckpoint>& ckpts) {
  std::map<std::string, const TorchBinCheckpoint*> shard_of;
  for (std::size_t i = 0; i < ckpts.size(); ++i) shard_of[src.shard_names[i]] = &ckpts[i];
  for (const auto& [name, shard] : src.weight_map) {
    const auto& names = shard_of.at(shard)->names();
    if (std::find(names.begin(), names.end(), name) == names.end())
      fail(src.index, "tensor '" + name + "' is listed in shard '" + shard +
                          "' but that file does not hold it");
  }
  for (std::size_t i = 0; i < ckpts.size(); ++i) {
    const TorchBinCheckpoint& c = ckpts[i];
    for (const std::string& name : c.names()) {
      auto it = src.weight_map.find(name);
      if (it == src.weight_map.end())
        fail(c.path(), "tensor '" + name + "' is not listed in " + src.index.filename().string());
      if (it->second != src.shard_names[i])
        fail(c.path(), "tensor '" + name + "' is also in this shard, but " +
                           src.index.filename().string() + " assigns it to '" + it->second + "'");
    }
  }
}

Source find_source(const fs::path& model) {
  Source s;
  std::error_code ec;
  if (fs::is_regular_file(model, ec)) {
    s.dir = model.parent_path().empty() ? fs::path(".") : model.parent_path();
    s.shards = {model};
    return s;
  }
  if (!fs::exists(model, ec)) throw FileNotFound(model.string() + ": no such file or folder");
  if (!fs::is_directory(model, ec)) throw IoError(model.string() + ": neither a file nor a folder");
  s.dir = model;
  if (fs::exists(model / "pytorch_model.bin")) {
    s.shards = {model / "pytorch_model.bin"};
  } else if (fs::exists(model / "pytorch_model.bin.index.json")) {
    s.index = model / "pytorch_model.bin.index.json";
    s.weight_map = detail::read_weight_map(s.index);
    std::set<std::string> files;
    for (const auto& [name, file] : s.weight_map) files.insert(file);
    for (const auto& f : files) {
      if (!fs::exists(model / f))
        fail(s.index, "shard '" + f + "' listed in weight_map does not exist");
      s.shards.push_back(model / f);
      s.shard_names.push_back(f);
    }
  } else {
    std::string have = fs::exists(model / "model.safetensors") ||
                               fs::exists(model / "model.safetensors.index.json")
                           ? " (it already has safetensors weights: nothing to convert)"
                           : "";
    throw CheckpointError(model.string() +
                          ": no pytorch_model.bin or pytorch_model.bin.index.json" + have);
  }
  return s;
}

// Names under which a model holds a weight tied to another one (an output projection that is the
// input embedding matrix); of two names for one tensor, these are the ones dropped, as
// transformers' save_pretrained drops a model's _tied_weights_keys.
bool tied_output_name(const std::string& name) {
  return detail::is_output_projection(name) || detail::is_decoder_bias(name);
}

// The same tensor under two names in one pickle: same storage record, offset, shape, stride and
// dtype (tied weights, which torch.save writes once and names twice). Views that merely share a
// storage are other tensors and stay.
using TensorIdentity =
    std::tuple<std::string, int64_t, std::vector<int64_t>, std::vector<int64_t>, DType>;

std::string shard_name(std::size_t i, std::size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

}  // namespace

ConvertResult convert_to_safetensors(const fs::path& model, const fs::path& out_dir,
                                     const ConvertOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  // Before any work: a file named as the folder is a usage error, not a filesystem exception,
  // and a failure further on leaves no empty folder behind.
  CreatedFolders created(prepare_output_folder(out_dir, "--out"));
  Source src = find_source(model);
  std::vector<TorchBinCheckpoint> ckpts;
  // (checkpoint index, tensor name, bytes) in state-dict order across shards.
  struct Item {
    std::size_t ckpt;
    std::string name;
    uint64_t bytes;
  };
  std::vector<Item> items;
  std::set<std::string> seen;
  uint64_t total = 0;
  for (const auto& shard : src.shards) ckpts.push_back(TorchBinCheckpoint::open(shard));
  if (!src.index.empty()) check_against_index(src, ckpts);
  ConvertResult r;
  for (const auto& ckpt : ckpts) {
    const fs::path& shard = ckpt.path();
    // Identity -> the names it has, in state-dict order.
    std::map<TensorIdentity, std::vector<std::string>> names_of;
    for (const auto& name : ckpt.names()) {
      if (!seen.insert(name).second) {
        throw CheckpointError(shard.string() + ": tensor '" + name +
                              "' also appears in another shard");
      }
      const TorchTensorInfo& info = ckpt.info(name);
      names_of[{info.storage_key, info.storage_offset, info.shape, info.stride, info.dtype}]
          .push_back(name);
    }
    // Safetensors has no aliases: one name of a tied tensor is written, the one that is not a
    // tied output (else the first), and the others are what transformers re-ties on load.
    std::set<std::string> dropped;
    for (const auto& [identity, names] : names_of) {
      if (names.size() < 2) continue;
      auto keep = std::find_if(names.begin(), names.end(),
                               [](const std::string& n) { return !tied_output_name(n); });
      if (keep == names.end()) keep = names.begin();
      for (const auto& n : names) {
        if (n == *keep) continue;
        dropped.insert(n);
        r.tied.push_back({n, *keep});
      }
    }
    for (const auto& name : ckpt.names()) {
      if (dropped.count(name)) continue;
      const TorchTensorInfo& info = ckpt.info(name);
      uint64_t bytes = dtype_size(info.dtype);
      for (int64_t d : info.shape) bytes *= static_cast<uint64_t>(d);
      items.push_back({static_cast<std::size_t>(&ckpt - ckpts.data()), name, bytes});
      total += bytes;
    }
  }

  // Greedy shards in state-dict order, as transformers' save_pretrained does.
  std::vector<std::vector<const Item*>> groups(1);
  uint64_t in_group = 0;
  for (const auto& it : items) {
    if (!groups.back().empty() && in_group + it.bytes > o.max_shard_bytes) {
      groups.emplace_back();
      in_group = 0;
    }
    groups.back().push_back(&it);
    in_group += it.bytes;
  }

  Progress bar("converting " + model.filename().string(), static_cast<int64_t>(total), "B",
               o.progress);
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  for (std::size_t g = 0; g < groups.size(); ++g) {
    std::string file = groups.size() == 1 ? "model.safetensors" : shard_name(g, groups.size());
    std::vector<OwnedTensor> owned;
    std::vector<TensorView> views;
    for (const Item* it : groups[g]) {
      owned.push_back(ckpts[it->ckpt].tensor(it->name));
      ++r.dtypes[std::string(dtype_name(owned.back().dtype))];
      weight_map[it->name] = file;
    }
    for (const auto& t : owned) views.push_back(t.view());
    write_safetensors(out_dir / file, views, meta);
    if (o.verify) {
      auto back = SafetensorsFile::open(out_dir / file);
      for (const auto& t : owned) {
        const TensorView& w = back->tensor(t.name);
        if (w.dtype != t.dtype || w.shape != t.shape || w.nbytes != t.nbytes ||
            (t.nbytes && std::memcmp(w.data, t.data(), t.nbytes) != 0)) {
          throw CheckpointError((out_dir / file).string() + ": tensor '" + t.name +
                                "' reads back different from what was written");
        }
      }
    }
    for (const auto& t : owned) {
      r.bytes += t.nbytes;
      bar.advance(static_cast<int64_t>(t.nbytes));
    }
    r.tensors += owned.size();
    r.weight_files.push_back(file);
  }
  bar.finish();
  // A single file of an earlier run goes before the new index appears: loaders prefer it.
  if (groups.size() > 1) fs::remove(out_dir / "model.safetensors");
  if (groups.size() > 1) {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = weight_map;
    write_file_atomic(out_dir / "model.safetensors.index.json", index.dump(2) + "\n");
    r.weight_files.push_back("model.safetensors.index.json");
  }

  // Safetensors weights of an earlier layout in the output folder (shards when this wrote one
  // file, or more shards than now) would be read together with, or instead of, these: removed
  // after the new files are complete. PyTorch weights are left alone.
  for (const auto& e : fs::directory_iterator(out_dir)) {
    const std::string f = e.path().filename().string();
    const bool ours =
        std::find(r.weight_files.begin(), r.weight_files.end(), f) != r.weight_files.end();
    const bool safetensors_weights = f == "model.safetensors" ||
                                     f == "model.safetensors.index.json" ||
                                     is_safetensors_shard_name(f);
    if (safetensors_weights && !ours && e.is_regular_file()) r.removed.push_back(f);
  }
  // An index first: shards left without one are never read.
  std::sort(r.removed.begin(), r.removed.end(), [](const std::string& a, const std::string& b) {
    const bool ia = a == "model.safetensors.index.json", ib = b == "model.safetensors.index.json";
    return ia != ib ? ia : a < b;
  });
  for (const auto& f : r.removed) fs::remove(out_dir / f);

  // Config and tokenizer files: what a model download would fetch, minus the weights.
  std::vector<std::string> present;
  for (const auto& e : fs::directory_iterator(src.dir)) {
    if (fs::is_regular_file(e.path())) present.push_back(e.path().filename().string());
  }
  std::sort(present.begin(), present.end());
  std::error_code ec;
  bool same_dir = fs::equivalent(src.dir, out_dir, ec);
  for (const auto& f : select_model_files(present)) {
    bool weights = f == "pytorch_model.bin" || f == "pytorch_model.bin.index.json" ||
                   f == "model.safetensors" || f == "model.safetensors.index.json";
    if (weights) continue;
    if (!same_dir) write_file_atomic(out_dir / f, read_file(src.dir / f));
    r.copied.push_back(f);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace xlt::io
