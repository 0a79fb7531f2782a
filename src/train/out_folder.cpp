// check_out_folder (see out_folder.h).
#include "train/out_folder.h"

#include <system_error>

#include "xlt/core/error.h"
#include "xlt/core/file.h"

namespace xlt::train::detail {
namespace fs = std::filesystem;

namespace {

// Anything a fine-tuning run writes; one of them marks the folder as xlt's.
bool looks_like_a_run(const fs::path& out) {
  for (const char* name :
       {"state", "best", "last", "log.jsonl", "train_config.json", "results.json", kFinetuneLock}) {
    std::error_code ec;
    if (fs::exists(out / name, ec)) return true;
  }
  return false;
}

// Empty but for what a run killed as it began left (its write probe, temp files): that run's
// rerun must not be refused as "not an xlt fine-tuning folder".
bool only_temp_files(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (!is_temp_name(it->path().filename().string())) return false;
  }
  if (ec) throw IoError("--out " + dir.string() + ": cannot list the folder: " + ec.message());
  return true;
}

}  // namespace

std::unique_ptr<FolderLock> check_out_folder(const fs::path& out, bool overwrite) {
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (fs::is_directory(out, ec) && !overwrite && !only_temp_files(out) &&
        !looks_like_a_run(out)) {
      throw UsageError("--out " + out.string() +
                       " exists and is not an xlt fine-tuning folder (no state/, last/, "
                       "log.jsonl, ...): choose another folder, or pass --overwrite to write "
                       "the run into it anyway");
    }
  }
  // Fail now, not after an hour of training, when the folder cannot be written.
  prepare_output_folder(out, "--out");
  auto lock = std::make_unique<FolderLock>(out, kFinetuneLock, "fine-tuning run");
  remove_temp_files(out);
  return lock;
}

}  // namespace xlt::train::detail
