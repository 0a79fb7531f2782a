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

// Temp names come from temp_path_for: ".<final name>.tmp.<pid>.<n>.<hex>".
bool is_leftover_temp(const std::string& name) {
  return name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos;
}

}  // namespace

std::unique_ptr<FolderLock> check_out_folder(const fs::path& out, bool overwrite) {
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (fs::is_directory(out, ec) && !overwrite && !fs::is_empty(out, ec) &&
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
  for (const auto& entry : fs::directory_iterator(out, ec)) {
    if (is_leftover_temp(entry.path().filename().string())) fs::remove_all(entry.path(), ec);
  }
  return lock;
}

}  // namespace xlt::train::detail
