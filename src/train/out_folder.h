// Private to xlt::train: the checks on `xlt finetune --out` that run before any work (a file in
// the way, a folder that is not an xlt run, a folder that cannot be written) and the folder lock
// that keeps a second run out while this one lives.
#pragma once

#include <filesystem>
#include <memory>

#include "xlt/core/lock.h"

namespace xlt::train::detail {

// Lock file name inside a fine-tuning output folder.
inline constexpr const char* kFinetuneLock = ".xlt-finetune.lock";

// Refuses (UsageError) an --out that is a file, or a non-empty folder without any of the files a
// fine-tuning run writes (unless `overwrite`); creates the folder and checks that it can be
// written (IoError naming the OS reason); takes the lock (IoError naming the holder); and removes
// temporary files a killed run left behind (".NAME.tmp.*", never under a final name).
std::unique_ptr<FolderLock> check_out_folder(const std::filesystem::path& out, bool overwrite);

}  // namespace xlt::train::detail
