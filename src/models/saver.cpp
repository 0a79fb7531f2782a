// Saving a model in Hugging Face's layout (config.json + model.safetensors + tokenizer files), so
// that transformers' from_pretrained loads the folder unchanged. The folder is built beside the
// destination and renamed into place: readers never see a half-written model.
#include <algorithm>
#include <system_error>

#include "models/arch.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/io/safetensors.h"
#include "xlt/models/tensor_io.h"

namespace xlt::models {
namespace fs = std::filesystem;

namespace {

// What save_pretrained / tokenizer.save_pretrained leave in a model folder besides the weights.
const char* const kCopiedFiles[] = {"tokenizer.json",          "vocab.txt",
                                    "tokenizer_config.json",   "special_tokens_map.json",
                                    "sentencepiece.bpe.model", "added_tokens.json",
                                    "generation_config.json"};

const ArchModel& arch_of(const Model& model) {
  const auto* arch = dynamic_cast<const ArchModel*>(&model);
  if (!arch) throw std::logic_error("save_model: model was not created by xlt::models");
  return *arch;
}

void write_folder(const Model& model, const fs::path& tmp, const SaveOptions& opts) {
  const auto& arch = arch_of(model);
  write_tensors(tmp / "model.safetensors", model.named_parameters(), {{"format", "pt"}});

  io::ModelConfig config = model.config();
  config.architectures = {arch.hf_class()};
  config.raw["torch_dtype"] = dtype_name(model.dtype());
  config.save(tmp / "config.json");

  const fs::path src = opts.tokenizer_dir.empty() ? model.source_dir() : opts.tokenizer_dir;
  if (src.empty()) return;
  for (const char* f : kCopiedFiles) {
    std::error_code ec;
    if (!fs::is_regular_file(src / f, ec)) continue;
    fs::copy_file(src / f, tmp / f, fs::copy_options::overwrite_existing, ec);
    if (ec) throw IoError("copying " + (src / f).string() + ": " + ec.message());
    // Copies of read-only sources (a shared data folder) stay writable for their new owner.
    fs::permissions(tmp / f, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add,
                    ec);
  }
}

// Whether a file in an existing model folder belongs to the model being replaced: its config,
// weights in any layout, tokenizer files. Those are the new model's to write (or to be absent
// from it: a stale tokenizer or weight file would be read with the new model).
bool replaced_by_save(const std::string& name) {
  if (name == "config.json" || name == "model.safetensors.index.json" ||
      name == "pytorch_model.bin.index.json")
    return true;
  for (const char* f : kCopiedFiles)
    if (name == f) return true;
  auto ends_with = [&](const std::string& tail) {
    return name.size() >= tail.size() &&
           name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
  };
  return name == "model.safetensors" || io::is_safetensors_shard_name(name) ||
         (name.rfind("pytorch_model", 0) == 0 && ends_with(".bin")) || is_temp_name(name);
}

// Everything else in the folder (a README, notes, a config the model was made from, subfolders)
// is kept, as save_pretrained keeps it: hard-linked into the new folder before the swap, so that
// no moment exists in which those files live only in a temp folder.
// Symbolic links stay links (never followed: `up -> ..` would recurse into the new folder);
// sockets and FIFOs are not carried.
void carry_over(const fs::path& old_dir, const fs::path& tmp) {
  constexpr auto kLinks = fs::copy_options::recursive | fs::copy_options::copy_symlinks;
  for (const auto& e : fs::directory_iterator(old_dir)) {
    const std::string name = e.path().filename().string();
    if (replaced_by_save(name)) continue;
    const auto st = e.symlink_status();
    if (!fs::is_regular_file(st) && !fs::is_directory(st) && !fs::is_symlink(st)) continue;
    std::error_code ec;
    fs::copy(e.path(), tmp / name, kLinks | fs::copy_options::create_hard_links, ec);
    if (ec) {
      fs::remove_all(tmp / name, ec);
      fs::copy(e.path(), tmp / name, kLinks);  // a file system without hard links
      fsync_path(tmp / name);
    }
  }
}

}  // namespace

std::vector<std::string> checkpoint_names(const Model& model) {
  std::vector<std::string> names;
  for (const auto& [name, p] : model.named_parameters()) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

void save_model(const Model& model, const fs::path& dir, const SaveOptions& opts) {
  fs::path target = fs::absolute(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "out/" or "."
  std::error_code ec;
  // Resolved paths: under a symlinked home, the current folder is the physical one.
  const fs::path cwd_in_target =
      fs::current_path(ec).lexically_relative(fs::weakly_canonical(target, ec));
  if (!ec && !cwd_in_target.empty() && *cwd_in_target.begin() != "..") {
    throw IoError(dir.string() + ": is the current folder or holds it; a model folder is " +
                  "replaced as a whole, so save into a subfolder instead");
  }
  // Only a folder is replaced: a file there (a model's vocab.txt, the user's notes) is not ours.
  if (fs::exists(fs::symlink_status(target, ec)) && !fs::is_directory(target, ec)) {
    throw IoError(dir.string() + ": exists and is not a folder; a model is saved as a folder");
  }
  fs::create_directories(target.parent_path(), ec);
  if (ec) throw IoError(target.parent_path().string() + ": cannot create folder: " + ec.message());
  const fs::path tmp = temp_path_for(target);
  fs::create_directory(tmp, ec);
  if (ec) throw IoError(tmp.string() + ": cannot create folder: " + ec.message());
  try {
    write_folder(model, tmp, opts);
    if (fs::is_directory(target)) carry_over(target, tmp);
    fsync_path(tmp);
    if (fs::exists(target)) {
      // Swap: old folder aside, new one in, then drop the old one.
      const fs::path old = temp_path_for(target);
      fs::rename(target, old);
      try {
        fs::rename(tmp, target);
      } catch (const fs::filesystem_error& e) {
        fs::rename(old, target, ec);  // the previous model back under its name
        if (ec) {
          throw IoError("saving model to " + target.string() + ": " + e.what() +
                        "; the previous model could not be put back either and is in " +
                        old.string() + " (rename it back by hand)");
        }
        throw;
      }
      fs::remove_all(old, ec);
    } else {
      fs::rename(tmp, target);
    }
    fsync_path(target.parent_path());
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw IoError("saving model to " + target.string() + ": " + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace xlt::models
